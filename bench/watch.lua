-- watch.lua - wrk as the change feed's watchers (bench/run): each request
-- asks GET /api/events?after=N with N the newest event this thread has
-- seen, as a page does, so the answers stay small while a job streams.
-- `-- hello [PATH]` instead asks PATH (default /bench/hello; bench/run
-- gives /bench/hello-ka, the kept-alive hello) through the same script
-- (the baseline pays the same Lua work per answer).
local after, hello, hello_path = 0, false, "/bench/hello"

function init(args)
	if args[1] == "hello" then
		hello = true
		hello_path = args[2] or hello_path
	else
		after = tonumber(args[1]) or 0
	end
end

function request()
	if hello then
		return wrk.format("GET", hello_path)
	end
	return wrk.format("GET", "/api/events?after=" .. after)
end

function response(status, headers, body)
	local n = body and body:match('"next_after":(%d+)')
	if n then
		n = tonumber(n)
		if n > after then
			after = n
		end
	end
end

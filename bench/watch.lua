-- watch.lua - wrk as the change feed's watchers (bench/run): each request
-- asks GET /api/events?after=N with N the newest event this thread has
-- seen, as a page does, so the answers stay small while a job streams.
-- `-- hello` instead asks /bench/hello through the same script (the
-- baseline pays the same Lua work per answer).
local after, hello = 0, false

function init(args)
	if args[1] == "hello" then
		hello = true
	else
		after = tonumber(args[1]) or 0
	end
end

function request()
	if hello then
		return wrk.format("GET", "/bench/hello")
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

"""relayrec - a strict reader of anyon-entry's relay records
(container/README.md, "The record format"), for tests that run a program
under `anyon-entry --relay` and want its output and exit back.

    r = relayrec.Records()
    stream.read_until(lambda s: r.feed(s.out).exit is not None, 60)
    r.data[1], r.data[2]    # the program's stdout and stderr bytes
    r.exit                  # (end offset, code, signal) once it came

Refuses (ValueError) what services/relay.c refuses: another magic or
version, an unknown type, a length out of range, an offset that jumps or
repeats, anything after the exit record."""
import struct


class Records:
    def __init__(self, start=0):
        self.next = start       # the offset the next record must have
        self.used = 0           # bytes of the raw stream consumed
        self.data = {1: b"", 2: b"", 3: b""}
        self.lost = []          # (offset, count)
        self.exit = None        # (end, code, signal)

    def feed(self, raw):
        """Parses the complete records in raw[self.used:] (raw: everything
        read so far, as Stream.out keeps it). Returns self."""
        while len(raw) - self.used >= 16:
            magic, ver, typ, zero, n, off = struct.unpack(">BBBBIQ", raw[self.used:self.used + 16])
            if magic != 0x41 or ver != 1 or zero != 0 or typ not in (1, 2, 3, 4, 5):
                raise ValueError("bad record header %r at byte %d" % (raw[self.used:self.used + 16], self.used))
            if self.exit is not None:
                raise ValueError("a record after the exit record")
            if off != self.next:
                raise ValueError("a record at offset %d, expected %d" % (off, self.next))
            if (typ <= 3 and not 1 <= n <= 65536) or (typ > 3 and n != 8):
                raise ValueError("a record of type %d and %d bytes" % (typ, n))
            if len(raw) - self.used < 16 + n:
                break
            p = raw[self.used + 16:self.used + 16 + n]
            self.used += 16 + n
            if typ <= 3:
                self.data[typ] += p
                self.next += n
            elif typ == 4:
                count = struct.unpack(">Q", p)[0]
                self.lost.append((off, count))
                self.next += count
            else:
                self.exit = (off,) + struct.unpack(">II", p)
        return self

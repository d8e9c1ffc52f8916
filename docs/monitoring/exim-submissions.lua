-- Turns a parsed Exim submission into an event of smtp-auth-insight:
-- an RFC 3339 time (the log's local time with this machine's offset), the
-- TLS version or "none", and the id "HOST:MESSAGE-ID" that
-- smtp-auth-insight's own Exim parser gives, so that a message shipped
-- twice is counted once.
local host = io.popen("hostname"):read("*l")

function to_event(tag, timestamp, record)
  local y, mo, d, h, mi, s = record["stamp"]:match("(%d+)-(%d+)-(%d+) (%d+):(%d+):(%d+)")
  local t = os.time({year = y, month = mo, day = d, hour = h, min = mi, sec = s})
  local event = {
    ts = os.date("%Y-%m-%dT%H:%M:%S", t) .. os.date("%z", t):gsub("(%d%d)$", ":%1"),
    sender = record["sender"],
    tls = record["tls"] or "none",
    client_ip = record["client_ip"],
    host = host,
    id = host .. ":" .. record["msgid"],
    envelope_from = record["envelope_from"],
  }
  return 1, timestamp, event
end

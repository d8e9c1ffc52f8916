-- SMTP AUTH submissions of a Postfix server, as smtp-auth-insight's events,
-- for a log shipper on a mail server that does not run smtp-auth-insight:
-- Fluent Bit (filter `lua`, call `to_event`) or Vector (transform `lua`,
-- hook `process`). It reads Postfix's lines from a log file (rsyslog's
-- RFC 3339 or traditional format) or from the journal.
--
-- It counts what smtp-auth-insight's own Postfix parser counts, with the
-- same ids, so a message shipped twice, or shipped and also imported from
-- the log, is counted once:
--   * a submission is smtpd's "QUEUEID: client=..., sasl_username=USER"
--     line, with the TLS version of the same smtpd process's "TLS
--     connection established" line (else "none"); it is sent when qmgr
--     takes the message ("QUEUEID: from=<...>", the envelope sender), and
--     dropped when smtpd rejects it at the end of DATA;
--     id "HOST:QUEUEID";
--   * a failed login is smtpd's "warning: NAME[IP]: SASL ... authentication
--     failed: ..., sasl_username=USER" line, result "auth_failed", id
--     "HOST:authfail:PROGRAM:PID:SECOND:N" (N counts failures of the same
--     process within a second).
-- Written for Lua 5.1 (Fluent Bit's LuaJIT) and later (Vector's Lua 5.4).

local tls_of = {}      -- "host pid" -> TLS version of the connection
local pending = {}     -- "host queue-id" -> event waiting for qmgr
local pending_count = 0
local MAX_PENDING = 100000
local failures = { second = nil, key = nil, n = 0 }

local function local_host()
  local pipe = io.popen("hostname")
  local name = pipe and pipe:read("*l") or "localhost"
  if pipe then pipe:close() end
  return name
end
local this_host = local_host()

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Seconds since the epoch of an RFC 3339 time, or nil.
local function epoch_of(ts)
  local y, mo, d, h, mi, s, rest = ts:match("^(%d+)-(%d+)-(%d+)[T ](%d+):(%d+):(%d+)(.*)$")
  if not y then return nil end
  local t = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400
    + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
  local sign, oh, om = rest:match("([+-])(%d%d):?(%d%d)$")
  if sign then
    local offset = tonumber(oh) * 3600 + tonumber(om) * 60
    if sign == "+" then t = t - offset else t = t + offset end
  end
  return t
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- A traditional syslog stamp ("Nov 27 02:50:19", local time, no year) as
-- RFC 3339: this year, or the last one for a stamp more than a day ahead.
local function traditional(mon, day, clock)
  local now = os.time()
  local fields = { month = MONTHS[mon], day = tonumber(day), year = tonumber(os.date("%Y", now)) }
  fields.hour, fields.min, fields.sec = clock:match("(%d+):(%d+):(%d+)")
  local t = os.time(fields)
  if t and t > now + 86400 then
    fields.year = fields.year - 1
    t = os.time(fields)
  end
  if not t then return nil end
  local zone = os.date("%z", t):gsub("(%d%d)$", ":%1")
  return os.date("%Y-%m-%dT%H:%M:%S", t) .. zone
end

-- A syslog line: time (RFC 3339), host, program, pid, message; or nil.
local function parse_line(line)
  local ts, host, program, pid, msg = line:match("^(%d%d%d%d%-%S+) (%S+) ([^%[%s]+)%[(%d+)%]: (.*)$")
  if ts then return ts, host, program, pid, msg end
  local mon, day, clock
  mon, day, clock, host, program, pid, msg =
    line:match("^(%a%a%a) +(%d+) (%d+:%d+:%d+) (%S+) ([^%[%s]+)%[(%d+)%]: (.*)$")
  if mon and MONTHS[mon] then
    return traditional(mon, day, clock), host, program, pid, msg
  end
  return nil
end

-- The value of `name=` in Postfix's ", "-separated fields.
local function field(text, name)
  local from = text:find(name .. "=", 1, true)
  if not from then return nil end
  local value = text:sub(from + #name + 1)
  local stop = value:find(", ", 1, true)
  if stop then value = value:sub(1, stop - 1) end
  value = value:gsub("^%s+", ""):gsub("%s+$", "")
  return value
end

local function bracketed_ip(text)
  return text:match("%[([^%]]+)%]")
end

-- One Postfix line; returns an event when one is complete, else nil.
local function postfix_line(ts, host, program, pid, msg)
  if not program:match("^postfix[^/]*/") then return nil end
  local service = program:match("([^/]+)$")
  local conn = host .. " " .. pid
  if service == "smtpd" then
    if msg:sub(1, 13) == "connect from " or msg:sub(1, 16) == "disconnect from " then
      tls_of[conn] = nil
      return nil
    end
    local qid, fields = msg:match("^(%w+): client=(.*)$")
    if qid then
      local user = field(fields, "sasl_username")
      if not user then return nil end
      if pending_count >= MAX_PENDING then
        pending, pending_count = {}, 0
      end
      pending[host .. " " .. qid] = {
        ts = ts, sender = user, tls = tls_of[conn] or "none", result = "accepted",
        client_ip = bracketed_ip(fields), host = host, id = host .. ":" .. qid,
      }
      pending_count = pending_count + 1
      return nil
    end
    qid = msg:match("^(%w+): reject: ")
    if qid then
      if pending[host .. " " .. qid] then
        pending[host .. " " .. qid] = nil
        pending_count = pending_count - 1
      end
      return nil
    end
    local version = msg:match("TLS connection established from .-%]: (TLSv[%d.]+) ")
    if version then
      -- OpenSSL's "TLSv1" is TLS 1.0.
      if version == "TLSv1" then version = "TLSv1.0" end
      tls_of[conn] = version
      return nil
    end
    if msg:sub(1, 9) == "warning: " and msg:find(" authentication failed", 1, true)
        and msg:find("SASL ", 1, true) then
      local second = epoch_of(ts)
      if not second then return nil end
      local key = program .. ":" .. pid
      if failures.second == second and failures.key == key then
        failures.n = failures.n + 1
      else
        failures.second, failures.key, failures.n = second, key, 0
      end
      -- "warning: NAME[IP]: SASL ...": the client's address.
      local ip = msg:sub(10):match("^[^%[%s:]*%[([^%]]+)%]")
      return {
        ts = ts, sender = field(msg, "sasl_username") or "(unknown)",
        tls = tls_of[conn] or "none", result = "auth_failed",
        client_ip = ip, host = host,
        id = host .. ":authfail:" .. program .. ":" .. pid .. ":"
          .. string.format("%d", second) .. ":" .. failures.n,
      }
    end
  elseif service == "qmgr" then
    local qid, from = msg:match("^(%w+): from=<([^>]*)>")
    local event = qid and pending[host .. " " .. qid]
    if event then
      pending[host .. " " .. qid] = nil
      pending_count = pending_count - 1
      if from ~= "" then event.envelope_from = from:lower() end
      return event
    end
  end
  return nil
end

-- An RFC 3339 UTC time of seconds since the epoch (a journal entry's).
local function utc(seconds)
  local whole = math.floor(seconds)
  local micros = math.floor((seconds - whole) * 1000000 + 0.5)
  if micros >= 1000000 then whole, micros = whole + 1, 0 end
  return os.date("!%Y-%m-%dT%H:%M:%S", whole) .. string.format(".%06dZ", micros)
end

-- A record as Fluent Bit or Vector hands it: a log line in `log` or
-- `message` (tail, file), or a journal entry's fields (systemd, journald;
-- Vector's remap in vector-postfix.toml puts its time in `ts`).
local function from_record(record, seconds)
  local ident = record.SYSLOG_IDENTIFIER
  if ident then
    local ts = record.ts or utc(tonumber(seconds) or os.time())
    local host = record._HOSTNAME or record.host or this_host
    local msg = record.MESSAGE or record.message
    local pid = record.SYSLOG_PID or record._PID
    if not (msg and pid) then return nil end
    return postfix_line(ts, host, ident, tostring(pid), msg)
  end
  local line = record.log or record.message
  if type(line) ~= "string" then return nil end
  local ts, host, program, pid, msg = parse_line(line)
  if not ts then return nil end
  return postfix_line(ts, host, program, pid, msg)
end

-- Fluent Bit: [FILTER] Name lua, Call to_event. Lines that complete no
-- event are dropped (-1).
function to_event(tag, timestamp, record)
  local event = from_record(record, timestamp)
  if not event then return -1, timestamp, record end
  return 1, timestamp, event
end

-- Vector: [transforms.X] type = "lua", version = "2", hooks.process = "process".
function process(event, emit)
  local out = from_record(event.log, nil)
  if out then emit({ log = out }) end
end

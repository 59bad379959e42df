-- lib2.rfc3339: RFC 3339 times <-> epoch seconds for the scenario runbooks (db-corruption-
-- restore picks its restore point from a detection time). The sandbox has no date library
-- beyond os.time/os.date in UTC, so parsing is done here, strictly: a time that does not
-- parse is an error, never a guess.
--
--   local t = require "lib2.rfc3339"
--   local s = t.parse("2026-11-25T16:39:06.123Z")   -- 1795624746.123
--   t.format(s)                                      -- "2026-11-25T16:39:06Z" (whole seconds)
--   t.format_ms(s)                                   -- "2026-11-25T16:39:06.123Z"

local M = {}

local function days_in_month(y, m)
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  return ({ 31, leap and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 })[m]
end

-- Seconds since the epoch (a float when the text has a fraction), or nil and a message.
function M.parse(text)
  if type(text) ~= "string" then
    return nil, "not a string: " .. tostring(text)
  end
  local y, mo, d, h, mi, s, rest = text:match(
    "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then
    return nil, "not an RFC 3339 time (YYYY-MM-DDTHH:MM:SSZ): " .. text
  end
  y, mo, d, h, mi, s = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
      tonumber(s)
  if mo < 1 or mo > 12 or d < 1 or d > days_in_month(y, mo) or h > 23 or mi > 59 or s > 60 then
    return nil, "not a valid date or time: " .. text
  end
  local frac = 0
  local digits, zone = rest:match("^%.(%d+)(.*)$")
  if digits then
    frac = tonumber("0." .. digits)
    rest = zone
  end
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = rest:match("^([+-])(%d%d):(%d%d)$")
    if not sign then
      return nil, "an RFC 3339 time needs a zone (Z or +HH:MM): " .. text
    end
    offset = (tonumber(oh) * 60 + tonumber(om)) * 60
    if sign == "-" then offset = -offset end
  end
  -- a leap second (:60) counts as the next second, as POSIX time does
  local base = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s }
  return base - offset + frac
end

-- Like parse, but raises with what was given (for runbook scripts that must stop).
function M.must(text, what)
  local v, err = M.parse(text)
  if not v then
    error((what and (what .. ": ") or "") .. err, 2)
  end
  return v
end

-- Whole seconds, rounded down (what AWS takes as a RestoreTime).
function M.format(secs)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(secs))
end

-- A difference of two times to the millisecond (the text has at most that precision; the
-- float arithmetic adds noise below it).
function M.round_ms(secs)
  return math.floor(secs * 1000 + 0.5) / 1000
end

function M.format_ms(secs)
  local whole = math.floor(secs)
  local ms = math.floor((secs - whole) * 1000 + 0.5)
  if ms >= 1000 then
    whole, ms = whole + 1, ms - 1000
  end
  return os.date("!%Y-%m-%dT%H:%M:%S", whole) .. string.format(".%03dZ", ms)
end

return M

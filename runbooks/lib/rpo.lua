-- lib.rpo: how the failover runbooks measure data loss (RPO) on the database that takes over.
-- Shared by region-failover.yaml and rds-multi-az-failover.yaml; docs/scenarios.md explains
-- the method. Every query here is read-only (pg.query runs in a READ ONLY transaction).
--
--   local rpo = require "lib.rpo"
--   local w = rpo.newest_write("dr_db")            -- newest committed write the server holds
--   local r = rpo.bound("dr_db", params.incident_start)  -- {rpo_s, newest_write, ...}

local M = {}

-- The newest committed write a server holds: the newer of the newest row of drbook.sentinel
-- (the table pg.sentinel_write fills; a platform heartbeat writes there every few seconds)
-- and the commit time of the last transaction a standby replayed. Both are RFC 3339 strings
-- in UTC with milliseconds, so they compare as text. With `not_after` (RFC 3339), only
-- writes at or before it count: on a server that already took over, later rows may be its
-- own clients' and say nothing about what the old writer lost. Returns the time (nil when
-- the server holds neither) and what it came from.
function M.newest_write(conn, not_after)
  local r = pg.query(conn, "select case when $1::timestamptz is null or " ..
    "pg_last_xact_replay_timestamp() <= $1::timestamptz then " ..
    "pg_last_xact_replay_timestamp() end as replayed, " ..
    "to_regclass('drbook.sentinel') is not null as has_sentinel", not_after)[1]
  local sentinel
  if r.has_sentinel then
    sentinel = pg.query(conn, "select max(written_at) as w from drbook.sentinel " ..
      "where $1::timestamptz is null or written_at <= $1::timestamptz", not_after)[1].w
  end
  if sentinel and (r.replayed == nil or sentinel >= r.replayed) then
    return sentinel, "newest sentinel row"
  end
  if r.replayed then
    return r.replayed, "last replayed commit"
  end
  return nil, "none"
end

-- An upper bound of the data lost when the old writer is gone: the time between the newest
-- write the server holds and the moment the old writer stopped. WAL is replayed in commit
-- order, so a server holding a write from at or after that moment lost nothing before it
-- (0). The moment is `stopped_at` (RFC 3339, e.g. the incident start) when known, else the
-- server's clock now, which only makes the bound looser. `not_after` as for newest_write.
-- The server does the arithmetic: no client clock and no time parsing in Lua.
function M.bound(conn, stopped_at, not_after)
  local newest, source = M.newest_write(conn, not_after)
  if newest == nil then
    error("cannot measure RPO: " .. conn .. " holds no sentinel row and no replayed commit")
  end
  local q
  if stopped_at then
    q = pg.query(conn, "select greatest(0, extract(epoch from ($1::timestamptz - " ..
      "$2::timestamptz)))::float8 as s, $1::timestamptz as upto", stopped_at, newest)[1]
  else
    q = pg.query(conn, "select greatest(0, extract(epoch from (clock_timestamp() - " ..
      "$1::timestamptz)))::float8 as s, clock_timestamp() as upto", newest)[1]
  end
  return {
    rpo_s = q.s,
    newest_write = newest,
    newest_write_source = source,
    measured_to = q.upto,
    measured_to_source = stopped_at and "incident_start" or "time of measurement",
    method = "bound",
  }
end

-- Waits (polling every second, up to `timeout` seconds) until the standby `conn` has
-- replayed WAL up to `lsn`: everything the old writer wrote before that point is on it.
function M.replayed_up_to(conn, lsn, timeout)
  local waited = 0
  while true do
    local r = pg.query(conn, "select coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), " ..
      "$1::pg_lsn) >= 0, false) as caught, pg_last_wal_replay_lsn()::text as at", lsn)[1]
    if r.caught then
      return true, r.at
    end
    if waited >= (timeout or 60) then
      return false, r.at
    end
    sleep { duration = 1 }
    waited = waited + 1
  end
end

return M

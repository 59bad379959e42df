-- lib.replica: rebuilding a read replica from a new primary. RDS cannot re-point a read
-- replica at another source, so it is deleted and created again under the same id, with the
-- settings it had (class, AZ, network, parameter group, tags). Shared by region-failover.yaml
-- (the remaining standby region's replica after a promotion), db-corruption-restore.yaml
-- (the recovery replicas after a restore) and region-failback.yaml (prod-db rebuilt in
-- us-east-1 in place of the stale old primary, then the standby regions' replicas);
-- docs/scenarios.md describes them. Also the question the failover runbooks' fence and
-- isolation rollbacks ask before they undo anything: was the replica promoted?
--
--   local replica = require "lib.replica"
--   if replica.promoted("prod-db-eu", "eu-west-1") then ... end  -- keep the fence
--   local before = replica.settings("prod-db-ap", "ap-southeast-1")  -- before any change
--   local r = replica.rebuild(before, aws.rds.describe_db_instance{...})  -- poll until r.done
--   replica.rebuild(before, primary, { delete = "primary", final_snapshot = "x" })

local M = {}

-- What a replica is now, read before anything changes, kept for creating it again. Never
-- fails: a replica that cannot be read comes back as {id, region, error}, and rebuild()
-- then creates it with RDS's defaults.
function M.settings(id, region)
  local ok, old = pcall(aws.rds.describe_db_instance, { id = id, region = region })
  if not ok then
    return { id = id, region = region, error = tostring(old) }
  end
  -- tags RDS reserves (aws:) cannot be set by a caller
  local tags
  for k, v in pairs(old.tags or {}) do
    if not k:find("^aws:") then
      tags = tags or {}
      tags[k] = v
    end
  end
  -- a default parameter group is what RDS picks anyway, and names an engine family the new
  -- source may no longer have; only a custom one is kept
  local pgroup = old.db_parameter_group
  if pgroup and pgroup:find("^default%.") then pgroup = nil end
  local sgs = old.vpc_security_group_ids
  if sgs and #sgs == 0 then sgs = nil end
  return { id = id, region = region, status = old.status, replica_source = old.replica_source,
           instance_class = old.instance_class, az = old.az, multi_az = old.multi_az,
           vpc_security_group_ids = sgs, db_subnet_group = old.db_subnet_group,
           db_parameter_group = pgroup, tags = tags }
end

-- Whether the instance `id` in `region` is no longer a read replica (promoted, or never one).
-- A rollback asks before it lets the old primary take writes again: beside a promoted
-- replica that would make two writable primaries. Raises when the instance cannot be read,
-- so that such a rollback fails rather than guesses.
function M.promoted(id, region)
  local r = aws.rds.describe_db_instance { id = id, region = region }
  return r.replica_source == nil
end

-- The region an RDS ARN names (arn:aws:rds:REGION:ACCOUNT:db:ID).
local function arn_region(arn)
  return arn and arn:match("^arn:[%w-]+:rds:([%w-]+):")
end

-- One poll of rebuilding `before` (a settings() table) as a read replica of `primary` (the
-- new primary as describe_db_instance answers it). Each poll reads the replica and does the
-- next thing: delete it, wait while it is deleting, create it once its id is free, or nothing
-- when it already follows `primary`; so running it again (a resume after a crash) is safe.
-- Returns {id, region, new_primary, done, action, status, replica_source}; poll until done.
-- `opts` (optional): final_snapshot, the identifier of a final snapshot taken when deleting
-- (default none); delete, what may be deleted - "any" (default), "replica" (a read replica of
-- another source) or "primary" (an instance that is no replica: a stale old primary);
-- anything else found under the id is an error, never deleted.
function M.rebuild(before, primary, opts)
  opts = opts or {}
  local id, region = before.id, before.region
  local function read()
    local ok, old = pcall(aws.rds.describe_db_instance, { id = id, region = region })
    if not ok and not tostring(old):find("NotFound", 1, true) then error(old) end
    if ok and old.status ~= "deleted" then return old end
    return nil
  end
  local r = { id = id, region = region, new_primary = primary.id, done = false }
  local old = read()
  if old then
    local src = old.replica_source or ""
    r.status, r.replica_source = old.status, old.replica_source
    if src == primary.id or src == primary.arn then
      r.done, r.action = true, "follows the new primary"
      return r
    end
    r.action = "waiting until it is deleted"
    if old.status ~= "deleting" then
      local kind = old.replica_source and "replica" or "primary"
      if (opts.delete or "any") ~= "any" and opts.delete ~= kind then
        error(string.format("%s in %s is a %s (source %s), not the %s expected here: " ..
          "refusing to delete it", id, region, kind, tostring(old.replica_source),
          opts.delete), 0)
      end
      aws.rds.delete_db_instance { id = id, region = region,
                                   skip_final_snapshot = opts.final_snapshot == nil,
                                   final_snapshot = opts.final_snapshot }
      r.action, r.deleted, r.final_snapshot = "deleted", kind, opts.final_snapshot
      old = read()                          -- gone at once: created in this poll
    end
    if old then return r end
  end
  -- a replica in the primary's own region names it by id, one in another region by ARN
  local same = arn_region(primary.arn) == region
  local c = aws.rds.create_db_instance_read_replica {
    id = id, region = region, source = same and primary.id or primary.arn,
    instance_class = before.instance_class, availability_zone = before.az,
    multi_az = before.multi_az, vpc_security_group_ids = before.vpc_security_group_ids,
    db_subnet_group = before.db_subnet_group, db_parameter_group = before.db_parameter_group,
    tags = before.tags }
  r.done, r.action, r.status = true, "created", c.status
  r.replica_source = same and primary.id or primary.arn
  return r
end

return M

-- lib.replica: (re)building an RDS read replica of a given source, one poll at a time.
-- Used by region-failback.yaml for prod-db in us-east-1 (the stale old primary deleted, a
-- read replica of the promoted instance created under its name) and for the standby regions'
-- replicas (deleted and created again from the new primary). RDS cannot re-point a read
-- replica at another source, and an identifier is free only once its instance is gone.
--
--   local replica = require "lib.replica"
--   local r = replica.rebuild_step { id = "prod-db-ap", region = "ap-southeast-1",
--     source = "prod-db", source_region = "us-east-1", instance_class = "db.r6g.large",
--     az = "ap-southeast-1a" }
--   -- in a polled step: `until: result.done`
--
-- Each call reads the instance and does the next thing: nothing when it already follows the
-- source; delete it (with a final snapshot when `final_snapshot` names one) when it is
-- anything else and `delete` allows it; wait while it is deleting; create it once the
-- identifier is free. Running it again after a crash is safe. Options:
--   id, region                 the replica to (re)build
--   source, source_region      the instance it must follow
--   instance_class, az, multi_az, vpc_security_group_ids, tags   for the created replica
--                              (nil: RDS's defaults)
--   final_snapshot             the final snapshot's identifier when deleting (nil: none)
--   delete                     "any" (default), "replica" (only an instance that is a read
--                              replica of something else) or "primary" (only one that is
--                              not a replica: a stale old primary); anything else found
--                              there is an error, never deleted
local M = {}

local function read(id, region)
  local ok, cur = pcall(aws.rds.describe_db_instance, { id = id, region = region })
  if not ok then
    if tostring(cur):find("NotFound") then return nil end
    error(cur, 0)
  end
  if cur.status == "deleted" then return nil end
  return cur
end

function M.rebuild_step(o)
  local src = aws.rds.describe_db_instance { id = o.source, region = o.source_region }
  local r = { id = o.id, region = o.region, source = src.id, source_region = o.source_region,
              done = false }
  local cur = read(o.id, o.region)
  if cur then
    local s = cur.replica_source or ""
    r.status, r.replica_source = cur.status, cur.replica_source
    if s == src.id or s == src.arn then
      r.done, r.action = true, "follows " .. src.id
      return r
    end
    r.action = "waiting until it is deleted"
    if cur.status ~= "deleting" then
      local kind = cur.replica_source and "replica" or "primary"
      local allowed = o.delete or "any"
      if allowed ~= "any" and allowed ~= kind then
        error(string.format("%s in %s is a %s (source %s), not the %s expected here: " ..
          "refusing to delete it", o.id, o.region, kind, tostring(cur.replica_source),
          allowed), 0)
      end
      aws.rds.delete_db_instance { id = o.id, region = o.region,
                                   skip_final_snapshot = o.final_snapshot == nil,
                                   final_snapshot = o.final_snapshot }
      r.action, r.deleted, r.final_snapshot = "deleted", kind, o.final_snapshot
      cur = read(o.id, o.region)       -- gone at once: created in this poll
    end
    if cur then return r end
  end
  local c = aws.rds.create_db_instance_read_replica {
    id = o.id, region = o.region, source = src.arn,
    source_region = o.source_region ~= o.region and o.source_region or nil,
    instance_class = o.instance_class, availability_zone = o.az, multi_az = o.multi_az,
    vpc_security_group_ids = o.vpc_security_group_ids, tags = o.tags }
  r.done, r.action, r.status, r.replica_source = true,
    (r.action == "deleted" and "deleted and created" or "created"), c.status, src.arn
  return r
end

return M

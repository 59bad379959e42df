-- drbook.aws_wait: the common waits of the failover runbooks, on top of the AWS actions.
-- Each polls a read-only action every `every` seconds (default 10) until the condition holds
-- or `timeout` seconds (default 600) pass, then returns the last result or raises an error
-- saying what was last seen. opts may also carry `region` and `connection`, passed through.
--
--   local w = require "drbook.aws_wait"
--   w.instance_available("prod-db-eu", { region = "eu-west-1", promoted = true })
--   w.service_steady("prod-eu", "api", { region = "eu-west-1", timeout = 300 })
--   w.change_in_sync(steps.flip.result.change_id)

local M = {}

local function with_target(args, opts)
  args.region = opts.region
  args.connection = opts.connection
  return args
end

-- Polls check() until it returns true; check returns (done, last_result, text_for_errors).
local function poll(what, opts, check)
  local timeout = opts.timeout or 600
  local every = opts.every or 10
  local start = os.time()
  while true do
    local done, result, seen = check()
    if done then
      return result
    end
    if os.time() - start >= timeout then
      error(string.format("%s: not reached within %d s (last seen: %s)", what, timeout,
        seen or "nothing"), 2)
    end
    sleep { duration = every }
  end
end

-- An RDS instance is "available"; with promoted = true it must also no longer be a replica
-- (replica_source nil), which is how a promotion ends.
function M.instance_available(id, opts)
  opts = opts or {}
  return poll("instance " .. id .. " available", opts, function()
    local r = aws.rds.describe_db_instance(with_target({ id = id }, opts))
    local ok = r.status == "available" and (not opts.promoted or r.replica_source == nil)
    return ok, r, string.format("status %s, replica of %s", tostring(r.status),
      tostring(r.replica_source))
  end)
end

-- An ECS service is steady: as many tasks running as desired, none pending, and its primary
-- deployment's rollout completed (when ECS reports one).
function M.service_steady(cluster, service, opts)
  opts = opts or {}
  return poll("service " .. cluster .. "/" .. service .. " steady", opts, function()
    local r = aws.ecs.describe_service(with_target({ cluster = cluster, service = service }, opts))
    local ok = r.running == r.desired and r.pending == 0 and
        (r.rollout_state == nil or r.rollout_state == "COMPLETED")
    return ok, r, string.format("running %s of %s, pending %s, rollout %s", tostring(r.running),
      tostring(r.desired), tostring(r.pending), tostring(r.rollout_state))
  end)
end

-- A Route 53 change has reached every Route 53 server (INSYNC).
function M.change_in_sync(change_id, opts)
  opts = opts or {}
  return poll("change " .. change_id .. " in sync", opts, function()
    local r = aws.route53.get_change(with_target({ id = change_id }, opts))
    return r.status == "INSYNC", r, "status " .. tostring(r.status)
  end)
end

-- A Route 53 health check reports healthy (or, with healthy = false, unhealthy: confirming
-- an outage before failing over).
function M.health_check(id, healthy, opts)
  opts = opts or {}
  if healthy == nil then healthy = true end
  return poll("health check " .. id .. (healthy and " healthy" or " unhealthy"), opts, function()
    local r = aws.route53.get_health_check_status(with_target({ id = id }, opts))
    return r.healthy == healthy, r, string.format("%s of %s checkers failing",
      tostring(r.failing), tostring(r.reporting))
  end)
end

return M

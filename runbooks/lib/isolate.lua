-- lib.isolate: cutting a database off the network through its VPC security groups, the fence
-- that needs no access to the database itself (docs/scenarios.md, "Fencing"). Every ingress
-- rule of the groups is revoked through EC2's regional API; what was revoked is returned, so
-- that a rollback (or a fail-back) can authorize exactly those rules again.
--
--   local isolate = require "lib.isolate"
--   local r = isolate.revoke({ "sg-1" }, "us-east-1")  -- {groups, revoked = {rule...}}
--   isolate.restore(r.revoked, "us-east-1")            -- {restored = n}

local M = {}

-- One EC2 call's arguments per source of a rule: a rule of describe_security_groups holds
-- lists of CIDRs and of source groups, the revoke and authorize actions take one of either.
local function each_source(group_id, rule, fn)
  local base = { group_id = group_id, protocol = rule.protocol, from_port = rule.from_port,
                 to_port = rule.to_port }
  local function with(k, v)
    local a = {}
    for key, val in pairs(base) do a[key] = val end
    a[k] = v
    return a
  end
  for _, cidr in ipairs(rule.cidrs or {}) do fn(with("cidr", cidr)) end
  for _, src in ipairs(rule.groups or {}) do fn(with("source_group_id", src)) end
end

-- Revokes every ingress rule of the groups. Raises on the first failed call (what was revoked
-- before it stays revoked: the step is idempotent, a retry revokes the rest).
function M.revoke(groups, region)
  local out = { groups = groups, revoked = {} }
  local got = aws.ec2.describe_security_groups { group_ids = groups, region = region }
  for _, g in ipairs(got.groups) do
    for _, rule in ipairs(g.ingress or {}) do
      each_source(g.id, rule, function(a)
        a.region = region
        aws.ec2.revoke_security_group_ingress(a)
        a.region = nil
        out.revoked[#out.revoked + 1] = a
      end)
    end
  end
  return out
end

-- Authorizes again the rules M.revoke returned.
function M.restore(revoked, region)
  for _, a in ipairs(revoked or {}) do
    local call = { region = region }
    for k, v in pairs(a) do call[k] = v end
    aws.ec2.authorize_security_group_ingress(call)
  end
  return { restored = #(revoked or {}) }
end

return M

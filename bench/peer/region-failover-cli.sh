#!/usr/bin/env bash
# The peer of bench/peer/region-failover.yaml: the AWS calls of runbooks/region-failover.yaml
# (everything but the PostgreSQL steps), made with the AWS CLI the way a careful shell script
# would: checks with --query, the waits as polling loops, the six update-service calls in
# parallel (the runbook's max_parallel 6), describe-services batched (one call for the six
# services, which the runbook's one-service action cannot do). Exits non-zero on the first
# check that fails. bench/run times it against the runbook on the same fresh moto state.
#
#   AWS_ENDPOINT_URL=... bench/peer/region-failover-cli.sh ZONE_ID HC_US HC_EU TOPIC_ARN
set -euo pipefail
zone=$1 hc_us=$2 hc_eu=$3 topic=$4
dr=eu-west-1
services="api auth training content payment ai-ml"
record=api.example.internal.
fail() { echo "region-failover-cli: $*" >&2; exit 1; }

# preflight
aws sts get-caller-identity --query Account --output text >/dev/null
st=$(aws rds describe-db-instances --region $dr --db-instance-identifier prod-db-eu \
	--query 'DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier]' --output text)
case $st in available*None) fail "prod-db-eu is not an available replica: $st" ;; available*) ;; *) fail "prod-db-eu: $st" ;; esac
bad=$(aws ecs describe-services --region $dr --cluster prod-eu --services $services \
	--query "length(services[?status!='ACTIVE'])" --output text)
[ "$bad" = 0 ] || fail "$bad DR services not ACTIVE"
aws route53 get-health-check-status --health-check-id "$hc_us" --query 'HealthCheckObservations[0].StatusReport.Status' --output text >/dev/null
aws route53 get-health-check-status --health-check-id "$hc_eu" --query 'HealthCheckObservations[0].StatusReport.Status' --output text >/dev/null
aws route53 list-resource-record-sets --hosted-zone-id "$zone" --start-record-name $record \
	--start-record-type CNAME --max-items 1 --query 'ResourceRecordSets[0].ResourceRecords[0].Value' --output text >/dev/null

# steps
aws sns publish --region us-east-1 --topic-arn "$topic" --subject "region failover started" \
	--message "region failover started: us-east-1 -> $dr" >/dev/null
aws rds promote-read-replica --region $dr --db-instance-identifier prod-db-eu >/dev/null
for i in $(seq 1 60); do
	st=$(aws rds describe-db-instances --region $dr --db-instance-identifier prod-db-eu \
		--query 'DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier]' --output text)
	case $st in available*) break ;; esac   # moto keeps the source: see the runbook
	[ "$i" -lt 60 ] || fail "prod-db-eu not promoted: $st"
	sleep 1
done
pids=
for svc in $services; do
	aws ecs update-service --region $dr --cluster prod-eu --service "$svc" --desired-count 2 >/dev/null &
	pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "update-service failed"; done
bad=$(aws ecs describe-services --region $dr --cluster prod-eu --services $services \
	--query "length(services[?desiredCount!=\`2\`])" --output text)
[ "$bad" = 0 ] || fail "$bad services not at 2"
change=$(aws route53 change-resource-record-sets --hosted-zone-id "$zone" --change-batch \
	'{"Changes":[{"Action":"UPSERT","ResourceRecordSet":{"Name":"'$record'","Type":"CNAME","TTL":60,"ResourceRecords":[{"Value":"api-eu-west-1.example.internal."}]}}]}' \
	--query ChangeInfo.Id --output text)
for i in $(seq 1 60); do
	[ "$(aws route53 get-change --id "$change" --query ChangeInfo.Status --output text)" = INSYNC ] && break
	[ "$i" -lt 60 ] || fail "change $change not INSYNC"
	sleep 1
done

# verification
bad=$(aws ecs describe-services --region $dr --cluster prod-eu --services $services \
	--query "length(services[?desiredCount!=\`2\`])" --output text)
[ "$bad" = 0 ] || fail "$bad services not at 2 after the flip"
v=$(aws route53 list-resource-record-sets --hosted-zone-id "$zone" --start-record-name $record \
	--start-record-type CNAME --max-items 1 --query 'ResourceRecordSets[0].ResourceRecords[0].Value' --output text)
[ "$v" = api-eu-west-1.example.internal. ] || fail "record is $v"
aws sns publish --region us-east-1 --topic-arn "$topic" --subject "region failover done" \
	--message "serving from $dr" >/dev/null

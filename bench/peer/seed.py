#!/usr/bin/env python3
"""Seeds a plain moto server with what the region failover's AWS calls touch, the same for
bench/peer/region-failover-cli.sh and bench/peer/region-failover.yaml: an SNS topic, a Route 53
zone with the api CNAME and two health checks, the RDS primary prod-db (us-east-1) and its
cross-region read replica prod-db-eu (eu-west-1), the ECS cluster prod-eu with six services.
Resets moto first (POST /moto-api/reset), so every run starts from the same fresh state.

usage: seed.py ENDPOINT   prints shell assignments: ZONE_ID=... HC_US=... HC_EU=... TOPIC_ARN=...
"""
import sys
import urllib.request

import boto3
from botocore.config import Config

SERVICES = ["api", "auth", "training", "content", "payment", "ai-ml"]


def client(endpoint, service, region):
    return boto3.client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}))


def main():
    ep = sys.argv[1]
    urllib.request.urlopen(urllib.request.Request(ep + "/moto-api/reset", method="POST"),
                           timeout=30).read()
    topic = client(ep, "sns", "us-east-1").create_topic(Name="alerts")["TopicArn"]
    r53 = client(ep, "route53", "us-east-1")
    zone = r53.create_hosted_zone(Name="example.internal.", CallerReference="bench-peer")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "api.example.internal.", "Type": "CNAME", "TTL": 60,
            "ResourceRecords": [{"Value": "api-us-east-1.example.internal."}]}}]})
    hcs = {}
    for region in ("us-east-1", "eu-west-1"):
        hcs[region] = r53.create_health_check(
            CallerReference="bench-peer-" + region,
            HealthCheckConfig={"Type": "HTTPS", "Port": 443, "ResourcePath": "/health",
                               "FullyQualifiedDomainName": "api-%s.example.internal" % region,
                               "RequestInterval": 30, "FailureThreshold": 3}
        )["HealthCheck"]["Id"]
    db = client(ep, "rds", "us-east-1").create_db_instance(
        DBInstanceIdentifier="prod-db", Engine="postgres", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="postgres", MasterUserPassword="bench-password",
        BackupRetentionPeriod=7)["DBInstance"]
    client(ep, "rds", "eu-west-1").create_db_instance_read_replica(
        DBInstanceIdentifier="prod-db-eu", SourceDBInstanceIdentifier=db["DBInstanceArn"],
        DBInstanceClass="db.t3.micro")
    ecs = client(ep, "ecs", "eu-west-1")
    ecs.create_cluster(clusterName="prod-eu")
    for svc in SERVICES:
        td = ecs.register_task_definition(family=svc, containerDefinitions=[
            {"name": svc, "image": "drbook/%s:1" % svc, "memory": 512}])
        ecs.create_service(cluster="prod-eu", serviceName=svc, desiredCount=1,
                           taskDefinition=td["taskDefinition"]["taskDefinitionArn"])
    print("ZONE_ID=%s HC_US=%s HC_EU=%s TOPIC_ARN=%s" % (zone_id, hcs["us-east-1"],
                                                        hcs["eu-west-1"], topic))


if __name__ == "__main__":
    main()

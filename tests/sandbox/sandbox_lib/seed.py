# Seeds the emulated cloud like the protected platform (Route 53 zone, record and health
# checks; RDS prod-db + cross-region replica prod-db-eu; ECS clusters and services; SNS topic;
# IAM user + key) and the application schema in the real primary database.
import hashlib

import boto3
from botocore.config import Config

from .common import now_utc, rfc3339
from .glue import AP, AP_REPLICA_ID, CLUSTERS, EU, PAIR_ID, REPLICA_ID, US

ZONE_NAME = "example.internal."
API_RECORD = "api." + ZONE_NAME
API_TARGETS = {US: "api-us-east-1." + ZONE_NAME, EU: "api-eu-west-1." + ZONE_NAME}
# the name clients resolve in the seed's DNS: Route 53 failover records (PRIMARY us-east-1,
# SECONDARY eu-west-1) on ARC routing-control health checks; `api.` stays the v1 simple record
# that the Route 53 flip of runbooks/region-failover.yaml rewrites (Route 53 allows no simple
# and failover records of one name and type side by side)
FAILOVER_RECORD = "api.global." + ZONE_NAME
SERVICES = ["api", "auth", "training", "content", "payment", "ai-ml"]
DESIRED = {US: 2, EU: 1, AP: 0}   # ap-southeast-1 is the cold standby
IAM_USER = "drbook"
APP_ROLE = "app"                  # the application's database role (fenced by NOLOGIN)
OPERATORS_CIDR = "10.99.0.0/16"

APP_SCHEMA = """
create table accounts (
  id serial primary key,
  email text not null unique,
  plan text not null default 'free',
  created_at timestamptz not null default now()
);
create table orders (
  id serial primary key,
  account_id int not null references accounts(id),
  amount_cents int not null check (amount_cents >= 0),
  status text not null default 'paid',
  created_at timestamptz not null default now()
);
insert into accounts (email, plan)
  select 'user' || g || '@example.internal', case when g % 5 = 0 then 'pro' else 'free' end
  from generate_series(1, 50) g;
insert into orders (account_id, amount_cents, created_at)
  select 1 + (g % 50), 100 * g, now() - make_interval(mins => 300 - g)
  from generate_series(1, 300) g;
-- the application's role: what a fence locks out (pg.fence method roles); its password is
-- set by the launcher. It may use every schema and table drbook's user makes, now and later.
create role app login;
grant usage, create on schema public to app;
grant select, insert, update, delete on all tables in schema public to app;
grant usage on all sequences in schema public to app;
alter default privileges for role postgres grant usage, create on schemas to app;
alter default privileges for role postgres grant select, insert, update, delete on tables to app;
alter default privileges for role postgres grant usage on sequences to app;
"""


def client(endpoint, service, region, key="setup", secret="setup"):
    return boto3.client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


def seed_security_groups(endpoint):
    """us-east-1's database security group: PostgreSQL from the application's group and from
    the operators' VPN range (what isolating the old primary revokes, docs/scenarios.md)."""
    ec2 = client(endpoint, "ec2", US)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    app = ec2.create_security_group(GroupName="prod-app", Description="the application's tasks",
                                    VpcId=vpc["VpcId"])["GroupId"]
    db = ec2.create_security_group(GroupName="prod-db", Description="prod-db: PostgreSQL",
                                   VpcId=vpc["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": app}],
        "IpRanges": [{"CidrIp": OPERATORS_CIDR, "Description": "operators' VPN"}]}])
    return {"db": db, "app": app}


def seed_cloud(endpoint, glue, ports, password, dns_ttl=60):
    """Runs while signature checking is still off (moto's no-auth setup window)."""
    out = {}
    iam = client(endpoint, "iam", US)
    iam.create_user(UserName=IAM_USER)
    # least-privilege policies come with the runbooks; the sandbox user may do everything
    iam.put_user_policy(UserName=IAM_USER, PolicyName="drbook-sandbox",
                        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":'
                                       '"Allow","Action":"*","Resource":"*"}]}')
    key = iam.create_access_key(UserName=IAM_USER)["AccessKey"]
    out["access_key_id"], out["secret_access_key"] = key["AccessKeyId"], key["SecretAccessKey"]

    out["topic_arn"] = client(endpoint, "sns", US).create_topic(Name="alerts")["TopicArn"]
    # the same topic in the recovery region: what a failover publishes to while us-east-1 is down
    out["topic_arn_eu"] = client(endpoint, "sns", EU).create_topic(Name="alerts")["TopicArn"]

    r53 = client(endpoint, "route53", US)
    zone = r53.create_hosted_zone(Name=ZONE_NAME, CallerReference="drbook-sandbox-zone")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    out["zone_id"], out["zone_name"], out["api_record"] = zone_id, ZONE_NAME, API_RECORD
    out["api_targets"] = dict(API_TARGETS)
    out["health_checks"] = {}
    for region, fqdn in API_TARGETS.items():
        hc = r53.create_health_check(
            CallerReference="drbook-sandbox-hc-" + region,
            HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": fqdn.rstrip("."),
                               "Port": 443, "ResourcePath": "/health",
                               "RequestInterval": 30, "FailureThreshold": 3})
        hc_id = hc["HealthCheck"]["Id"]
        glue.health_checks[hc_id] = region
        out["health_checks"][region] = hc_id
    changes = [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": API_RECORD, "Type": "CNAME", "TTL": 60,
        "ResourceRecords": [{"Value": API_TARGETS[US]}]}}]
    for fqdn in API_TARGETS.values():
        changes.append({"Action": "UPSERT", "ResourceRecordSet": {
            "Name": fqdn, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "127.0.0.1"}]}})
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})

    # ARC: one routing control per cell, each behind a RECOVERY_CONTROL health check (healthy
    # iff the control is On), and the failover records that follow them
    out["arc_controls"], out["arc_health_checks"] = {}, {}
    for region in (US, EU):
        arn = glue.arc.add_control("cell-" + region, "On")
        hc = r53.create_health_check(
            CallerReference="drbook-sandbox-arc-" + region,
            HealthCheckConfig={"Type": "RECOVERY_CONTROL", "RoutingControlArn": arn})
        out["arc_controls"][region] = arn
        out["arc_health_checks"][region] = hc["HealthCheck"]["Id"]
    out["failover_record"], out["dns_ttl"] = FAILOVER_RECORD, dns_ttl
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": FAILOVER_RECORD, "Type": "CNAME", "TTL": dns_ttl, "SetIdentifier": region,
            "Failover": role, "HealthCheckId": out["arc_health_checks"][region],
            "ResourceRecords": [{"Value": API_TARGETS[region]}]}}
        for region, role in ((US, "PRIMARY"), (EU, "SECONDARY"))]})

    out["security_groups"] = seed_security_groups(endpoint)
    rds_us = client(endpoint, "rds", US)
    db = rds_us.create_db_instance(
        DBInstanceIdentifier=PAIR_ID, Engine="postgres", EngineVersion="15.5",
        DBInstanceClass="db.t3.micro", AllocatedStorage=20, MultiAZ=True,
        AvailabilityZone=US + "a", MasterUsername="postgres", MasterUserPassword=password,
        DBName="app", Port=ports["writer_endpoint"], BackupRetentionPeriod=35,
        VpcSecurityGroupIds=[out["security_groups"]["db"]],
        Tags=[{"Key": "drbook:role", "Value": "primary"}])["DBInstance"]
    pair = glue._rds_backend(US).databases[PAIR_ID]
    pair._drb_secondary_az = US + "b"
    rds_eu = client(endpoint, "rds", EU)
    rds_eu.create_db_instance_read_replica(
        DBInstanceIdentifier=REPLICA_ID, SourceDBInstanceIdentifier=db["DBInstanceArn"],
        DBInstanceClass="db.t3.micro", AvailabilityZone=EU + "a", Port=ports[REPLICA_ID],
        Tags=[{"Key": "drbook:role", "Value": "dr-replica"}])
    replica = glue._rds_backend(EU).databases[REPLICA_ID]
    replica.port = ports[REPLICA_ID]      # moto copies the source's port into the replica
    replica.multi_az = False
    out["db_instances"] = {PAIR_ID: US, REPLICA_ID: EU}

    for region, cluster in CLUSTERS.items():
        ecs = client(endpoint, "ecs", region)
        ec2 = client(endpoint, "ec2", region)
        # Fargate tasks need awsvpc networking: use the region's default VPC
        subnets = [s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]][:2]
        sgs = [g["GroupId"] for g in ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]][:1]
        net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": sgs,
                                       "assignPublicIp": "DISABLED"}}
        ecs.create_cluster(clusterName=cluster)
        for svc in SERVICES:
            td = ecs.register_task_definition(
                family=svc, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                cpu="256", memory="512",
                containerDefinitions=[{"name": svc, "image": ecr_image(glue.account, region,
                                                                      svc),
                                       "essential": True, "cpu": 256, "memory": 512,
                                       "portMappings": [{"containerPort": 8080}]}])
            ecs.create_service(cluster=cluster, serviceName=svc,
                               taskDefinition=td["taskDefinition"]["taskDefinitionArn"],
                               desiredCount=DESIRED[region], launchType="FARGATE",
                               networkConfiguration=net)
    glue.reconcile_all_now()     # the platform is already running when the sandbox is "up"
    out["clusters"] = dict(CLUSTERS)
    out["services"] = list(SERVICES)
    return out


def seed_snapshot(endpoint):
    client(endpoint, "rds", US).create_db_snapshot(DBInstanceIdentifier=PAIR_ID,
                                                   DBSnapshotIdentifier="prod-db-seed")
    return "prod-db-seed"


# ---------------------------------------------------------------- data stores and images
# S3 buckets replicated to eu-west-1 (the sandbox plays the replication, see stores.py) with a
# replication marker, the ElastiCache group of us-east-1 (eu-west-1's is rebuilt on failover),
# Application Auto Scaling targets of every ECS service, and the ECR repositories holding the
# task definitions' images in both regions.
BUCKETS = {"prod-assets": "prod-assets-eu", "prod-uploads": "prod-uploads-eu"}
MARKER_KEY = "drbook/replication-marker"
CACHE_GROUPS = {US: "prod-cache", EU: "prod-cache-eu"}
CACHE_NODE_TYPE = "cache.r6g.large"
SCALING = {US: (2, 10), EU: (1, 10), AP: (0, 10)}  # (min, max) of each service's scalable target
IMAGE_TAG = "1"


def ecr_image(account, region, svc):
    """The image a service's task definition names: the region's own ECR copy."""
    return "%s.dkr.ecr.%s.amazonaws.com/drbook/%s:%s" % (account, region, svc, IMAGE_TAG)


def write_marker(s3, bucket, at=None):
    """The replication marker: an object whose metadata says when it was written."""
    at = at or rfc3339(now_utc())
    s3.put_object(Bucket=bucket, Key=MARKER_KEY, Body=("written at %s\n" % at).encode(),
                  ContentType="text/plain", Metadata={"written-at": at})
    return at


def seed_stores(endpoint, glue):
    """Runs after seed_cloud, in the same no-auth window."""
    out = {}
    s3 = {US: client(endpoint, "s3", US), EU: client(endpoint, "s3", EU)}
    for source, replica in BUCKETS.items():
        for region, name in ((US, source), (EU, replica)):
            s3[region].create_bucket(Bucket=name, CreateBucketConfiguration={
                "LocationConstraint": region} if region != US else {})
            s3[region].put_bucket_versioning(Bucket=name, VersioningConfiguration={
                "Status": "Enabled"})
        s3[US].put_bucket_replication(Bucket=source, ReplicationConfiguration={
            "Role": "arn:aws:iam::%s:role/s3-crr" % glue.account,
            "Rules": [{"ID": "to-" + EU, "Priority": 1, "Status": "Enabled",
                       "Filter": {"Prefix": ""},
                       "DeleteMarkerReplication": {"Status": "Disabled"},
                       "Destination": {"Bucket": "arn:aws:s3:::" + replica}}]})
        s3[US].put_object(Bucket=source, Key="seed/readme.txt", Body=b"seeded by the sandbox\n")
        out.setdefault("marker_written_at", {})[source] = write_marker(s3[US], source)
    out["buckets"], out["marker_key"] = dict(BUCKETS), MARKER_KEY

    client(endpoint, "elasticache", US).create_replication_group(
        ReplicationGroupId=CACHE_GROUPS[US], ReplicationGroupDescription="prod cache",
        Engine="redis", CacheNodeType=CACHE_NODE_TYPE, NumCacheClusters=2,
        AutomaticFailoverEnabled=True)
    out["cache_groups"] = dict(CACHE_GROUPS)

    manifest = ('{"schemaVersion": 2, "mediaType": '
                '"application/vnd.docker.distribution.manifest.v2+json", "config": '
                '{"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, '
                '"digest": "sha256:%s"}, "layers": []}')
    for region, cluster in CLUSTERS.items():
        ecr = client(endpoint, "ecr", region)
        aas = client(endpoint, "application-autoscaling", region)
        for svc in SERVICES:
            repo = "drbook/" + svc
            ecr.create_repository(repositoryName=repo)
            ecr.put_image(repositoryName=repo, imageTag=IMAGE_TAG,
                          imageManifest=manifest % hashlib.sha256(repo.encode()).hexdigest())
            lo, hi = SCALING[region]
            aas.register_scalable_target(
                ServiceNamespace="ecs", ResourceId="service/%s/%s" % (cluster, svc),
                ScalableDimension="ecs:service:DesiredCount", MinCapacity=lo, MaxCapacity=hi)
    out["ecr_repositories"] = ["drbook/" + s for s in SERVICES]
    out["scaling"] = {r: list(v) for r, v in SCALING.items()}
    return out


def stores_env(stores):
    return {
        "DRB_SANDBOX_BUCKETS": " ".join("%s:%s" % kv for kv in stores["buckets"].items()),
        "DRB_SANDBOX_S3_MARKER_KEY": stores["marker_key"],
        "DRB_SANDBOX_CACHE_GROUP_US": stores["cache_groups"][US],
        "DRB_SANDBOX_CACHE_GROUP_EU": stores["cache_groups"][EU],
        "DRB_SANDBOX_ECR_REPOSITORIES": " ".join(stores["ecr_repositories"]),
    }


# ap-southeast-1, the cold standby: the cross-region read replica prod-db-ap of prod-db, the
# api target record and its health check, an alerts topic (the prod-ap cluster and its six
# services at desired 0 come from seed_cloud's loop over CLUSTERS). Runs in the no-auth window
# after seed_cloud.
AP_TARGET = "api-ap-southeast-1." + ZONE_NAME


def seed_ap_southeast_1(endpoint, glue, ports, cloud):
    out = {"replica": AP_REPLICA_ID, "cluster": CLUSTERS[AP], "api_target": AP_TARGET}
    out["topic_arn"] = client(endpoint, "sns", AP).create_topic(Name="alerts")["TopicArn"]
    r53 = client(endpoint, "route53", US)
    hc = r53.create_health_check(
        CallerReference="drbook-sandbox-hc-" + AP,
        HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": AP_TARGET.rstrip("."),
                           "Port": 443, "ResourcePath": "/health", "RequestInterval": 30,
                           "FailureThreshold": 3})["HealthCheck"]["Id"]
    glue.health_checks[hc] = AP
    out["health_check"] = hc
    r53.change_resource_record_sets(HostedZoneId=cloud["zone_id"], ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": AP_TARGET, "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "127.0.0.1"}]}}]})
    primary = client(endpoint, "rds", US).describe_db_instances(
        DBInstanceIdentifier=PAIR_ID)["DBInstances"][0]
    client(endpoint, "rds", AP).create_db_instance_read_replica(
        DBInstanceIdentifier=AP_REPLICA_ID, SourceDBInstanceIdentifier=primary["DBInstanceArn"],
        DBInstanceClass="db.t3.micro", AvailabilityZone=AP + "a", Port=ports[AP_REPLICA_ID],
        Tags=[{"Key": "drbook:role", "Value": "cold-standby-replica"}])
    replica = glue._rds_backend(AP).databases[AP_REPLICA_ID]
    replica.port = ports[AP_REPLICA_ID]   # moto copies the source's port into the replica
    replica.multi_az = False
    cloud["db_instances"][AP_REPLICA_ID] = AP
    return out


# ---------------------------------------------------------------- database networks
# The databases' network and settings, as on AWS (issue 11, point 6): in every region a
# security group `prod-db` (us-east-1's is seed_security_groups', which admits the
# application's group `prod-app`) and a DB subnet group `prod-db` in the default VPC and a
# parameter group `prod-postgres15`, given to prod-db and its replicas. The staging
# environment is a VPC of its own: its subnets, a DB subnet group `staging-db`, a security
# group `staging-db` admitting `staging-app` (the group the staging application runs in: the
# load balancer's /_staging/ answers only for an instance one of whose groups admits it), and
# a parameter group `staging-postgres15`. Runs in the no-auth window after
# seed_ap_southeast_1.
DB_PORT = 5432
DB_GROUP = "prod-db"
DB_PARAMETER_GROUP = "prod-postgres15"
STAGING = {"cidr": "10.20.0.0/16", "subnet_group": "staging-db",
           "parameter_group": "staging-postgres15"}


def _admit(ec2, vpc, name, admits=None):
    """A security group of vpc; with admits, it lets that group in on the database port."""
    sg = ec2.create_security_group(GroupName=name, Description="drbook sandbox: " + name,
                                   VpcId=vpc)["GroupId"]
    if admits:
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": DB_PORT, "ToPort": DB_PORT,
            "UserIdGroupPairs": [{"GroupId": admits}]}])
    return sg


def seed_db_network(endpoint, glue, cloud):
    out = {"db_security_groups": {}}
    for region, ident in ((US, PAIR_ID), (EU, REPLICA_ID), (AP, AP_REPLICA_ID)):
        ec2, rds = client(endpoint, "ec2", region), client(endpoint, "rds", region)
        vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])[
            "Vpcs"][0]["VpcId"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
        sg = cloud["security_groups"]["db"] if region == US else _admit(ec2, vpc, DB_GROUP)
        rds.create_db_subnet_group(DBSubnetGroupName=DB_GROUP, SubnetIds=subnets,
                                   DBSubnetGroupDescription="prod-db's subnets")
        rds.create_db_parameter_group(DBParameterGroupName=DB_PARAMETER_GROUP,
                                      DBParameterGroupFamily="postgres15",
                                      Description="prod-db's parameters")
        rds.modify_db_instance(DBInstanceIdentifier=ident, VpcSecurityGroupIds=[sg],
                               DBSubnetGroupName=DB_GROUP,
                               DBParameterGroupName=DB_PARAMETER_GROUP, ApplyImmediately=True)
        out["db_security_groups"][region] = sg

    ec2, rds = client(endpoint, "ec2", US), client(endpoint, "rds", US)
    vpc = ec2.create_vpc(CidrBlock=STAGING["cidr"])["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.%d.0/24" % i,
                                 AvailabilityZone=US + az)["Subnet"]["SubnetId"]
               for i, az in ((1, "a"), (2, "b"))]
    app = _admit(ec2, vpc, "staging-app")
    sg = _admit(ec2, vpc, "staging-db", admits=app)
    rds.create_db_subnet_group(DBSubnetGroupName=STAGING["subnet_group"], SubnetIds=subnets,
                               DBSubnetGroupDescription="the staging environment's subnets")
    rds.create_db_parameter_group(DBParameterGroupName=STAGING["parameter_group"],
                                  DBParameterGroupFamily="postgres15",
                                  Description="the staging environment's parameters")
    glue.staging_app_security_group = app
    out["staging"] = dict(STAGING, vpc=vpc, security_group=sg, app_security_group=app)
    return out


def db_network_env(net, lb_url):
    st = net["staging"]
    return {
        "DRB_SANDBOX_DB_SECURITY_GROUP_EU": net["db_security_groups"][EU],
        "DRB_SANDBOX_DB_SECURITY_GROUP_AP": net["db_security_groups"][AP],
        "DRB_SANDBOX_DB_SUBNET_GROUP": DB_GROUP,
        "DRB_SANDBOX_DB_PARAMETER_GROUP": DB_PARAMETER_GROUP,
        "DRB_SANDBOX_STAGING_VPC": st["vpc"],
        "DRB_SANDBOX_STAGING_SECURITY_GROUP": st["security_group"],
        "DRB_SANDBOX_STAGING_SUBNET_GROUP": st["subnet_group"],
        "DRB_SANDBOX_STAGING_PARAMETER_GROUP": st["parameter_group"],
        "DRB_SANDBOX_STAGING_URL": lb_url + "/_staging",
    }

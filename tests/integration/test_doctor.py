"""aurelius doctor against moto: an empty account, a half-built one, and the sandbox's whole loop."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys

import boto3
import pytest

from aurelius import cli
from tests.helpers import BUCKET, CLUSTER, KEY, REPO


def run(capsys, *args: str) -> tuple[int, dict]:
    code = cli.main(["doctor", "--environment", "local", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def first_problem(report: dict) -> dict:
    return next(c for c in report["checks"] if c["status"] in ("fail", "error"))


def test_empty_account_fails_naming_the_cluster_first(aws, capsys):
    # Given an account with nothing of aurelius in it (the fixture's buckets removed)
    for bucket in ("aurelius-models-local-demo", "aurelius-artifacts-local-demo"):
        aws.s3.delete_bucket(Bucket=bucket)
    # When doctor runs
    code = cli.main(["doctor", "--environment", "local"])
    out = capsys.readouterr().out
    # Then it exits 1 and names the first missing link of the first deploy, with the command that makes it
    assert code == 1
    assert "start with the first missing link: cluster" in out
    assert "fix: python infra/ecs-cluster/management-scripts/create-cluster.py --environment local" in out
    # and the JSON form says the same, one object per check
    code, report = run(capsys)
    assert code == 1 and report["ok"] is False
    assert first_problem(report)["name"] == "cluster"
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in report["checks"])
    assert {c["status"] for c in report["checks"]} <= {
        "ok",
        "fail",
        "error",
        "warning",
        "skipped",
        "not checkable here",
    }


def test_aurelius_doctor_on_an_empty_account_exits_1_naming_the_first_missing_link(aws, capsys):
    # Given an account with nothing of aurelius in it (the fixture's buckets removed)
    for bucket in ("aurelius-models-local-demo", "aurelius-artifacts-local-demo"):
        aws.s3.delete_bucket(Bucket=bucket)
    # When an operator runs the CLI's doctor command (its default boto3 clients, against moto)
    code = cli.main(["doctor", "--environment", "local"])
    out = capsys.readouterr().out
    # Then it exits 1 and names the cluster, the first link of the first deploy, with its fix
    assert code == 1
    assert "start with the first missing link: cluster" in out
    assert "fix: python infra/ecs-cluster/management-scripts/create-cluster.py --environment local" in out
    # and --json through the CLI gives the same verdict
    code = cli.main(["doctor", "--environment", "local", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and first_problem(report)["name"] == "cluster"


def test_aurelius_doctor_with_an_unknown_environment_exits_2_before_any_aws_call(aws, capsys):
    # Given a client factory that fails the test if doctor asks it for any AWS client
    def no_aws(service, region):
        raise AssertionError(f"a bad environment must stop before any AWS call (asked for {service})")

    # When the CLI's doctor is asked about an environment the settings do not have
    code = cli.main(["doctor", "--environment", "staging"], clients=no_aws)
    err = capsys.readouterr().err
    # Then it exits 2 and names the unknown environment
    assert code == 2
    assert "aurelius doctor: error:" in err and "environments.staging: unknown environment" in err


def test_after_the_cluster_the_trigger_stack_is_the_first_missing_link(aws, scripts, capsys):
    # Given the cluster of the first deploy's step 1
    assert scripts["cluster"].main(["--environment", "local"]) == 0
    capsys.readouterr()
    # When doctor runs
    code, report = run(capsys)
    # Then the cluster passes and the next link, the trigger stack, is named with its command
    checks = {c["name"]: c for c in report["checks"]}
    assert code == 1
    assert checks["cluster"]["status"] == "ok"
    # moto skips capacity providers: not a pass, not a failure
    assert checks["cluster capacity providers"]["status"] == "not checkable here"
    assert first_problem(report)["name"] == "trigger stack"
    assert first_problem(report)["fix"] == "sam build && sam deploy --config-env local"


def test_doctor_reads_only(aws, capsys):
    # Given a recorder of every AWS operation doctor's clients send
    sent: list[str] = []
    session = boto3.session.Session()
    session.events.register("before-call.*.*", lambda model, **kwargs: sent.append(model.name))
    # When doctor runs
    cli.main(
        ["doctor", "--environment", "local"],
        clients=lambda service, region: session.client(service, region_name=region),
    )
    capsys.readouterr()
    # Then every call was a read
    assert sent
    assert all(name.startswith(("Describe", "Get", "Head", "List", "Simulate")) for name in sent), sent


@pytest.mark.e2e
@pytest.mark.xdist_group("sandbox")  # runs the demo, which writes .sandbox/ (see tests/e2e)
def test_against_the_sandbox_loop_doctor_passes_and_then_catches_broken_links(capsys):
    from aurelius.sandbox.demo import SERVICE_STACK, Demo, Timeline
    from aurelius.sandbox.environment import local_aws

    # Given the sandbox after the whole loop (what `make demo ARGS=--keep` leaves running)
    with local_aws(lambda_log=io.StringIO()) as sandbox:
        Demo(sandbox, Timeline(out=lambda line: None)).run()
        capsys.readouterr()
        # When doctor checks environment local
        code, report = run(capsys)
        checks = {c["name"]: c["status"] for c in report["checks"]}
        # Then nothing is to fix ...
        assert code == 0, report
        for name in (
            "cluster",
            "trigger stack",
            "trigger functions",
            "model bucket",
            "model bucket versioning",
            "model bucket notifications",
            "model object",
            "service stack",
            "service stack role",
        ):
            assert checks[name] == "ok", (name, report)
        # ... and what moto cannot answer is said so, never passed
        for name in (
            "cluster capacity providers",
            "cluster and tasks in one VPC",
            "task subnets reach AWS",
            "cluster room for a deploy",
            "deployment alarms",
            "service role",
            "service-linked role AWSServiceRoleForElasticLoadBalancing",
        ):
            assert checks[name] == "not checkable here", (name, report)
        assert [s for n, s in checks.items() if n.startswith("role of ")] == ["not checkable here"] * 2
        unanswered = sum(s == "not checkable here" for s in checks.values())

        # and the module's own entry point, as a person runs it with the sandbox's exports, agrees
        done = subprocess.run(
            [sys.executable, "-m", "aurelius.doctor", "--environment", "local"],
            cwd=REPO,
            env={**os.environ, **sandbox.environment},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"all checks passed ({unanswered} not checkable here" in done.stdout

        session = sandbox.session()
        cfn, s3 = session.client("cloudformation"), session.client("s3")
        # When a person's update binds the service stack to another role (moto, like AWS, records
        # RoleARN; it refuses an update that changes nothing, so DesiredCount moves too) ...
        stack = cfn.describe_stacks(StackName=SERVICE_STACK)["Stacks"][0]
        params = [
            {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
            for p in stack["Parameters"]
            if p["ParameterKey"] != "DesiredCount"
        ] + [{"ParameterKey": "DesiredCount", "ParameterValue": "3"}]
        cfn.update_stack(
            StackName=SERVICE_STACK,
            UsePreviousTemplate=True,
            Parameters=params,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            RoleARN="arn:aws:iam::123456789012:role/someone-admin",
        )
        # ... and versioning is suspended on the model bucket
        s3.put_bucket_versioning(Bucket="aurelius-models-local-demo", VersioningConfiguration={"Status": "Suspended"})
        code, report = run(capsys)
        problems = [c for c in report["checks"] if c["status"] == "fail"]
        # Then doctor names both, first the one earlier in the chain
        assert code == 1
        assert [c["name"] for c in problems] == ["model bucket versioning", "service stack role"]
        assert "someone-admin" in problems[1]["detail"]
        trigger = cfn.describe_stacks(StackName="aurelius-trigger-stack-local-demo")["Stacks"][0]
        service_role = {o["OutputKey"]: o["OutputValue"] for o in trigger["Outputs"]}["CloudFormationServiceRoleArn"]
        assert problems[1]["fix"].endswith(f"--environment local --role-arn {service_role}")


# --- the links around the service, on moto's EC2, ECS and Auto Scaling ----------------------------------
# moto answers these describes truthfully when the resources are made through its APIs (its
# CloudFormation skips capacity providers and registers no container instance), so each check is
# given real answers here with ``simulated=False``.


def vpc_with_subnets(ec2, cidr: str = "10.0.0.0/16") -> tuple[str, list[dict]]:
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    return vpc, subnets


def container_instance_in(aws, ec2, subnet_id: str) -> str:
    """An EC2 instance in ``subnet_id``, registered with the local cluster as ECS's agent would."""
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet_id)["Instances"][0]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": "us-east-1"})
    aws.ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=document)
    return instance["InstanceId"]


def test_container_instances_in_another_vpc_than_the_task_subnets_fail_naming_them(aws):
    from aurelius.doctor.infra import check_same_vpc

    # Given the cluster's instance in one VPC and the service's task subnets in another (the
    # shipped dev settings' mistake of issue 18)
    ec2 = boto3.client("ec2")
    aws.ecs.create_cluster(clusterName=CLUSTER)
    _, instance_subnets = vpc_with_subnets(ec2, "10.1.0.0/16")
    task_vpc, task_subnets = vpc_with_subnets(ec2, "10.2.0.0/16")
    stray = container_instance_in(aws, ec2, instance_subnets[0]["SubnetId"])
    # When doctor checks them
    check = check_same_vpc(aws.ecs, ec2, CLUSTER, task_subnets, simulated=False)
    # Then it fails and names the instance outside the tasks' VPC
    assert check.status == "fail"
    assert stray in check.detail and task_vpc in check.detail
    # and once an instance runs in the tasks' VPC instead, it passes
    aws.ecs.deregister_container_instance(
        cluster=CLUSTER, containerInstance=aws.ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"][0]
    )
    container_instance_in(aws, ec2, task_subnets[0]["SubnetId"])
    assert check_same_vpc(aws.ecs, ec2, CLUSTER, task_subnets, simulated=False).status == "ok"


def test_no_container_instance_is_not_a_pass(aws):
    from aurelius.doctor.infra import check_same_vpc

    ec2 = boto3.client("ec2")
    aws.ecs.create_cluster(clusterName=CLUSTER)
    _, subnets = vpc_with_subnets(ec2)
    assert check_same_vpc(aws.ecs, ec2, CLUSTER, subnets, simulated=False).status == "skipped"
    assert check_same_vpc(aws.ecs, ec2, CLUSTER, subnets, simulated=True).status == "not checkable here"


def endpoint(ec2, vpc: str, name: str, **kwargs) -> None:
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.us-east-1.{name}", **kwargs)


def test_private_task_subnets_need_a_nat_route_or_every_endpoint_ecs_on_ec2_uses(aws):
    from aurelius.doctor.infra import check_task_egress

    # Given private task subnets whose route table only routes to an internet gateway
    ec2 = boto3.client("ec2")
    vpc, subnets = vpc_with_subnets(ec2)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for s in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=s["SubnetId"])
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    # When doctor checks them
    check = check_task_egress(ec2, subnets, "us-east-1", simulated=False)
    # Then they fail: tasks get no public IP, so the internet gateway does not help them
    assert check.status == "fail"
    assert "internet gateway route, but tasks get no public IP" in check.detail
    assert "ecs-agent" in check.fix and "s3 (gateway endpoint" in check.fix
    # Given the S3 gateway endpoint on their route table and all but one interface endpoint
    endpoint(ec2, vpc, "s3", RouteTableIds=[table], VpcEndpointType="Gateway")
    for name in ("ecr.api", "ecr.dkr", "logs", "ecs", "ecs-agent"):
        endpoint(ec2, vpc, name, VpcEndpointType="Interface", SubnetIds=[s["SubnetId"] for s in subnets])
    # Then the missing one is named
    check = check_task_egress(ec2, subnets, "us-east-1", simulated=False)
    assert check.status == "fail" and "ecs-telemetry" in check.fix and "ecs-agent" not in check.fix
    # And with every endpoint there, they pass
    endpoint(ec2, vpc, "ecs-telemetry", VpcEndpointType="Interface", SubnetIds=[s["SubnetId"] for s in subnets])
    assert check_task_egress(ec2, subnets, "us-east-1", simulated=False).status == "ok"


def test_a_nat_route_is_enough_and_a_simulator_is_never_failed(aws):
    from aurelius.doctor.infra import check_task_egress

    ec2 = boto3.client("ec2")
    vpc, subnets = vpc_with_subnets(ec2)
    # On the simulator (the sandbox's default VPC): not checkable, with what AWS would say
    check = check_task_egress(ec2, subnets, "us-east-1", simulated=True)
    assert check.status == "not checkable here" and "on AWS:" in check.detail
    # Given a NAT gateway route on the subnets' main route table
    nat = ec2.create_nat_gateway(SubnetId=subnets[0]["SubnetId"], AllocationId=ec2.allocate_address()["AllocationId"])
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    ec2.create_route(
        RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGateway"]["NatGatewayId"]
    )
    check = check_task_egress(ec2, subnets, "us-east-1", simulated=False)
    assert check.status == "ok" and nat["NatGateway"]["NatGatewayId"] in check.detail


def cluster_with_group(aws, max_size: int, instance_type: str = "c6i.large") -> None:
    """The cluster stack's shape through the APIs: launch template, Auto Scaling group, capacity provider."""
    ec2, autoscaling = boto3.client("ec2"), boto3.client("autoscaling")
    template = ec2.create_launch_template(
        LaunchTemplateName="aurelius-lt-local-demo", LaunchTemplateData={"InstanceType": instance_type}
    )["LaunchTemplate"]
    _, subnets = vpc_with_subnets(ec2)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="aurelius-asg-local-demo",
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=0,
        MaxSize=max_size,
        DesiredCapacity=0,
        VPCZoneIdentifier=",".join(s["SubnetId"] for s in subnets),
    )
    group_arn = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["aurelius-asg-local-demo"])[
        "AutoScalingGroups"
    ][0]["AutoScalingGroupARN"]
    aws.ecs.create_capacity_provider(
        name="aurelius-cp-local-demo", autoScalingGroupProvider={"autoScalingGroupArn": group_arn}
    )
    aws.ecs.create_cluster(clusterName=CLUSTER, capacityProviders=["aurelius-cp-local-demo"])


@pytest.mark.parametrize(("group_max", "expected"), [(6, "ok"), (5, "fail")])
def test_the_cluster_group_must_hold_twice_the_most_tasks_during_a_deploy(aws, group_max, expected):
    from aurelius.doctor.infra import check_cluster_room

    # Given prod's sizing: tasks of 1 vCPU / 2 GiB on c6i.large (2 vCPU, 4 GiB, 3 network
    # interfaces): one task per instance, as the memory left after the OS and agent holds one
    cluster_with_group(aws, group_max)
    ec2, autoscaling = boto3.client("ec2"), boto3.client("autoscaling")
    # When doctor checks the room for a deploy of 3 tasks (6 during the deploy)
    check = check_cluster_room(aws.ecs, autoscaling, ec2, CLUSTER, 3, 1024, 2048, simulated=False)
    # Then a group of at most 6 instances holds them and one of 5 does not, with the size to set
    assert check.status == expected, check
    assert "6 tasks during a deploy need 6 instances" in check.detail
    if expected == "fail":
        assert "capacity.max to 6" in check.fix


# --- model signatures -----------------------------------------------------------------------------------


def signed_upload(aws, body: bytes) -> str:
    """A model version uploaded as `aurelius publish` lays it out: its signature object first,
    then the model with its sha256 in the metadata (aurelius.core.signature_layout)."""
    from aurelius.core.signature_layout import SHA256_METADATA_KEY, signature_key

    digest = hashlib.sha256(body).hexdigest()
    aws.s3.put_object(Bucket=BUCKET, Key=signature_key(KEY, digest), Body=b'{"bundle": "sample"}')
    return aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=body, Metadata={SHA256_METADATA_KEY: digest})["VersionId"]


def signature_checks(signing_required: str, deployed: str) -> dict[str, dict]:
    from aurelius.doctor.chain import _Chain
    from aurelius.doctor.iam import Arns
    from aurelius.doctor.links import read_model_object
    from aurelius.settings import ServiceSettings, load_environment

    env = load_environment(REPO / "infra/ecs-service/management-scripts/service-settings.yml", ServiceSettings, "local")
    chain = _Chain(
        env, lambda service, region: boto3.client(service), "us-east-1", False, Arns("aws", "us-east-1", "123456789012")
    )
    chain.service_stack = {
        "StackName": env.stack_name,
        "Parameters": [
            {"ParameterKey": "ModelVersionId", "ParameterValue": deployed},
            {"ParameterKey": "SigningRequired", "ParameterValue": signing_required},
        ],
    }
    _, chain.newest = read_model_object(chain.s3, BUCKET, KEY)
    return {c.name: c.as_dict() for c in chain.signatures()}


def test_an_unsigned_deployed_version_fails_where_signing_is_required_naming_it(aws):
    # Given an unsigned version deployed and a signed one uploaded since
    unsigned = aws.upload(1)
    signed = signed_upload(aws, b"a signed model")
    # When doctor checks the signatures of a stack that requires signed models
    checks = signature_checks("true", deployed=unsigned)
    # Then the newest passes and the deployed one fails, naming its version
    assert checks["newest model signature"]["status"] == "ok"
    assert signed in checks["newest model signature"]["detail"]
    assert checks["deployed model signature"]["status"] == "fail"
    assert unsigned in checks["deployed model signature"]["detail"]
    assert checks["deployed model signature"]["fix"].startswith(
        "publish it signed: aurelius publish --environment local"
    )
    # Where signing is not required, the same unsigned version is shown, not failed
    checks = signature_checks("false", deployed=unsigned)
    assert checks["deployed model signature"]["status"] == "ok"
    assert "not signed (signing not required)" in checks["deployed model signature"]["detail"]


def test_a_signature_object_missing_for_the_newest_version_fails_where_required(aws):
    # Given a version that names its digest but whose signature object was never written
    from aurelius.core.signature_layout import SHA256_METADATA_KEY

    body = b"a model whose signature is missing"
    version = aws.s3.put_object(
        Bucket=BUCKET, Key=KEY, Body=body, Metadata={SHA256_METADATA_KEY: hashlib.sha256(body).hexdigest()}
    )["VersionId"]
    checks = signature_checks("true", deployed=version)
    # Then both checks fail (the deployed version is the newest) and name the missing object
    assert checks["newest model signature"]["status"] == "fail"
    assert checks["deployed model signature"]["status"] == "fail"
    assert (
        ".sig/" in checks["newest model signature"]["detail"] and version in checks["newest model signature"]["detail"]
    )

"""Names follow {base_name}-{resource_type}-{environment}-{suffix} and AWS limits."""

import pytest

from aurelius.naming import InvalidName, Namer, check_name, resource_name


def test_name_follows_the_convention():
    assert resource_name("aurelius", "alb", "prod", "ml") == "aurelius-alb-prod-ml"


def test_load_balancer_name_over_32_characters_is_rejected_naming_it():
    name = "aurelius-alb-production-" + "x" * 9  # 33 characters
    with pytest.raises(InvalidName, match=name):
        check_name("alb", name)


def test_load_balancer_name_of_exactly_32_characters_is_accepted():
    name = "a" * 32
    assert check_name("tg", name) == name


@pytest.mark.parametrize("resource_type", ["alb", "tg", "elb"])
def test_load_balancer_names_allow_only_letters_digits_hyphens(resource_type):
    with pytest.raises(InvalidName, match="letters, digits and hyphens"):
        check_name(resource_type, "aurelius_alb")


def test_stack_name_must_start_with_a_letter_and_fit_128():
    with pytest.raises(InvalidName):
        check_name("service-stack", "9-stack")
    with pytest.raises(InvalidName, match="128"):
        check_name("service-stack", "a" * 129)


def test_namer_checks_every_name_of_a_stack():
    namer = Namer("aurelius-very-long-base", "production", "model-serving")
    with pytest.raises(InvalidName, match="alb"):
        namer.all(("cluster", "alb"))


@pytest.mark.parametrize("resource_type", ["cfn-role", "task-role", "exec-role"])
def test_iam_role_names_are_checked_against_64_characters(resource_type):
    # Given a role name of 65 characters (IAM allows 64)
    # Then it is refused before any API call, naming the limit; 64 fits
    with pytest.raises(InvalidName, match="64"):
        check_name(resource_type, "a" * 65)
    assert check_name(resource_type, "a" * 64) == "a" * 64


def test_role_names_follow_the_convention_the_trigger_stack_scopes_its_policy_to():
    # The CloudFormation service role's statements name exactly these (template.yaml)
    namer = Namer("aurelius", "prod", "ml")
    assert (namer("cfn-role"), namer("task-role"), namer("exec-role")) == (
        "aurelius-cfn-role-prod-ml",
        "aurelius-task-role-prod-ml",
        "aurelius-exec-role-prod-ml",
    )

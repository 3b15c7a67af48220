"""Every finding of the decision is known everywhere it is shown: the functions' outcome, the
status word of `aurelius status`, and what `aurelius deploy` says. A finding added to the enum
alone fails here, not in front of an operator."""

from __future__ import annotations

import pytest

from aurelius.cli.commands.deploy import DEPLOY_SAYS
from aurelius.core.decision import OUTCOME, PROBLEM_FINDING, Action, Finding
from aurelius.status import STATE_FOR_FINDING


@pytest.mark.parametrize("finding", list(Finding))
def test_every_finding_has_an_outcome_a_status_word_and_a_deploy_message(finding):
    # Given a finding / Then each place that shows it knows it
    assert isinstance(OUTCOME[finding], Action)
    assert STATE_FOR_FINDING[finding]
    assert DEPLOY_SAYS[finding].text


def test_the_tables_name_only_findings():
    # A stale key (a finding renamed or removed) is as wrong as a missing one
    assert set(OUTCOME) == set(Finding)
    assert set(STATE_FOR_FINDING) == {*Finding, None}
    assert set(DEPLOY_SAYS) == set(Finding)


def test_every_model_reader_problem_is_a_finding():
    assert set(PROBLEM_FINDING.values()) <= set(Finding)


def test_findings_read_as_the_names_logs_and_json_have_always_carried():
    # Given the values are the contract of the logs, notifications and --json
    # Then they are the CamelCase names, and compare equal to those strings
    assert Finding.IN_SYNC == "InSync" and f"{Finding.PAST_DEADLINE}" == "PastDeadline"
    assert all(finding.value[0].isupper() and "_" not in finding.value for finding in Finding)

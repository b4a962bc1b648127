"""Set-up mistakes end ``run`` and ``register`` at once, in one line with the fix, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartbeat_worker.devserver import DevServer

from .commands import DEV_ENVIRONMENT, closed_port, one_line, run_command, write_jobs

pytestmark = pytest.mark.anyio

NO_AWS_SETTINGS = {
    **{k: v for k, v in DEV_ENVIRONMENT.items() if not k.startswith("AWS_")},
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.mark.parametrize(
    ("target", "right"),
    [
        ("./myjobs.py", "give the module name instead: myjobs "),
        ("myjobs.py", "give the module name instead: myjobs "),
        ("sub/myjobs.py", "give the module name instead: sub.myjobs "),
        (".myjobs", "drop the leading dot: myjobs"),
        ("nosuchmodule", "no module named 'nosuchmodule'"),
    ],
)
@pytest.mark.parametrize("subcommand", ["run", "register"])
async def test_a_misspelt_target_gives_the_right_spelling(
    tmp_path: Path, subcommand: str, target: str, right: str
) -> None:
    write_jobs(tmp_path)
    arguments = [subcommand, target, "--domain", "d"]
    if subcommand == "run":
        arguments += ["--task-list", "jobs"]

    code, _, err = await run_command(*arguments, cwd=tmp_path)

    assert code == 2, err
    assert right in one_line(err)


async def test_a_syntax_error_gives_the_file_line_and_message(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")

    code, _, err = await run_command(
        "run", "broken", "--domain", "d", "--task-list", "jobs", cwd=tmp_path
    )

    assert code == 2, err
    assert (
        one_line(err) == "heartbeat-worker run: syntax error in broken.py, line 2: invalid syntax"
    )


@pytest.mark.parametrize("subcommand", ["run", "register"])
async def test_no_region_says_how_to_set_one(tmp_path: Path, subcommand: str) -> None:
    arguments = [subcommand, "myjobs", "--domain", "d"]
    if subcommand == "run":
        arguments += ["--task-list", "jobs"]

    code, _, err = await run_command(*arguments, env=NO_AWS_SETTINGS, cwd=write_jobs(tmp_path))

    assert code == 2, err
    line = one_line(err)
    assert "no AWS region" in line
    assert "--region" in line
    assert "AWS_REGION" in line


@pytest.mark.parametrize("subcommand", ["run", "register"])
async def test_no_credentials_names_the_credential_chain(tmp_path: Path, subcommand: str) -> None:
    arguments = [subcommand, "myjobs", "--domain", "d", "--region", "eu-west-1"]
    if subcommand == "run":
        arguments += ["--task-list", "jobs"]

    code, _, err = await run_command(*arguments, env=NO_AWS_SETTINGS, cwd=write_jobs(tmp_path))

    assert code == 2, err
    line = one_line(err)
    assert "no AWS credentials" in line
    assert "AWS_PROFILE" in line
    assert "AWS_ACCESS_KEY_ID" in line


@pytest.mark.parametrize(
    "arguments",
    [
        ["register", "myjobs", "--domain", "d"],
        ["run", "myjobs", "--domain", "d", "--task-list", "jobs", "--register"],
        ["run", "myjobs", "--domain", "d", "--task-list", "jobs"],
    ],
    ids=["register", "run --register", "run"],
)
async def test_a_refused_connection_is_one_line_with_the_endpoint(
    tmp_path: Path, arguments: list[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    # Before: about 60 s of retries, then ~100 lines of traceback.
    code, _, err = await run_command(
        *arguments, "--endpoint-url", url, cwd=write_jobs(tmp_path), deadline=20
    )

    assert code == 2, err
    line = one_line(err)
    assert f"cannot reach SWF at {url}" in line
    assert "Connect" in line


async def test_an_unknown_domain_names_both_fixes(tmp_path: Path, dev_server: DevServer) -> None:
    code, _, err = await run_command(
        "run", "myjobs", "--domain", "nosuch", "--task-list", "jobs",
        "--endpoint-url", dev_server.endpoint_url, cwd=write_jobs(tmp_path),
    )  # fmt: skip

    assert code == 2, err
    line = one_line(err)
    assert "domain 'nosuch' does not exist" in line
    assert "--register" in line
    assert "heartbeat-worker register myjobs --domain nosuch" in line


async def test_an_unregistered_activity_type_is_named(
    tmp_path: Path, dev_server: DevServer
) -> None:
    url = dev_server.endpoint_url
    write_jobs(tmp_path)
    (tmp_path / "other.py").write_text(
        "from heartbeat_worker import activity\n\n\n"
        "@activity(task_list='jobs')\nasync def other() -> None:\n    pass\n"
    )
    code, _, err = await run_command(
        "register", "myjobs", "--domain", "d", "--endpoint-url", url, cwd=tmp_path
    )
    assert code == 0, err

    code, _, err = await run_command(
        "run", "other", "--domain", "d", "--task-list", "jobs", "--endpoint-url", url, cwd=tmp_path
    )

    assert code == 2, err
    line = one_line(err)
    assert "activity type other:1 not registered in domain 'd'" in line
    assert "heartbeat-worker register other --domain d" in line

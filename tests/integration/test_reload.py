"""Safe reload: a running engine picks up valid changes to rules/ and content/, and keeps its last
good rules and templates when a change does not validate (logging its FILE:LINE problems)."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from outreach import db
from outreach.content import available_channels, render
from outreach.project import Project
from outreach.reload import RulesWatcher, watch_rules
from tests.support import make_project


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    yield Project.open(make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}"))
    db.dispose_all()


@pytest.fixture
def watcher(project: Project) -> Iterator[RulesWatcher]:
    w = RulesWatcher(project, interval=0.05)
    yield w
    w.stop()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    st = path.stat()  # a later mtime even on file systems with coarse timestamps
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def case_study_after(project: Project) -> timedelta:
    step = project.rules.step("aware", "case-study")
    assert step is not None
    return step.after


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_nothing_changed_nothing_reloaded(watcher: RulesWatcher) -> None:
    assert watcher.poll() is None


def test_a_valid_change_is_picked_up(project: Project, watcher: RulesWatcher) -> None:
    edit(project.rules_dir / "nurture.yaml", "after: 4d", "after: 6d")
    assert watcher.poll() == []
    assert case_study_after(project) == timedelta(days=6)


def test_an_invalid_change_keeps_the_last_good_rules_and_is_logged(
        project: Project, watcher: RulesWatcher, caplog: pytest.LogCaptureFixture) -> None:
    rules = project.rules
    edit(project.rules_dir / "nurture.yaml", "after: 4d", "after: 4 days")
    with caplog.at_level(logging.ERROR):
        problems = watcher.poll()
    assert problems and "'4 days' is not a duration" in problems[0].message
    assert project.rules is rules and case_study_after(project) == timedelta(days=4)
    assert any("rules/nurture.yaml:" in r.getMessage() and "keeping the last good ones" in r.getMessage()
               for r in caplog.records)
    edit(project.rules_dir / "nurture.yaml", "after: 4 days", "after: 5d")  # fixed: now it goes in
    assert watcher.poll() == [] and case_study_after(project) == timedelta(days=5)


def test_a_broken_template_keeps_the_last_good_one(project: Project, watcher: RulesWatcher) -> None:
    welcome = project.content_dir / "aware" / "welcome.email.j2"
    edit(welcome, "{% block subject %}Welcome", "{% block subject %}{% if %}Hello")
    problems = watcher.poll()
    assert problems and problems[0].file == "content/aware/welcome.email.j2"
    context = {"contact": {"first_name": "Ada"}, "rep": {"name": "Rep"}, "links": {"unsubscribe": "u"}}
    assert render(project.content_dir, "aware/welcome", "email", context).subject == "Welcome, Ada"
    edit(welcome, "{% if %}Hello", "Hello")
    assert watcher.poll() == []
    assert render(project.content_dir, "aware/welcome", "email", context).subject == "Hello, Ada"


def test_a_new_template_counts_only_once_it_validates(project: Project, watcher: RulesWatcher) -> None:
    assert available_channels(project.content_dir, "aware/welcome") == {"email"}
    sms = project.content_dir / "aware" / "welcome.sms.j2"
    sms.write_text("Hi {{ contact.first_name | default('there') }}! {% endif %}")
    assert watcher.poll()
    assert available_channels(project.content_dir, "aware/welcome") == {"email"}
    sms.write_text("Hi {{ contact.first_name | default('there') }}! Reply STOP to opt out.")
    assert watcher.poll() == []
    assert available_channels(project.content_dir, "aware/welcome") == {"email", "sms"}


def test_the_watcher_thread_reloads_by_itself(project: Project) -> None:
    w = RulesWatcher(project, interval=0.05).start()
    try:
        edit(project.rules_dir / "nurture.yaml", "after: 4d", "after: 9d")
        assert wait_for(lambda: case_study_after(project) == timedelta(days=9))
    finally:
        w.stop()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_reloads_at_once(project: Project) -> None:
    previous = signal.getsignal(signal.SIGHUP)
    w = watch_rules(project, interval=60)  # polling would take a minute: only the signal can do it
    try:
        path = project.rules_dir / "nurture.yaml"
        st = path.stat()
        path.write_text(path.read_text().replace("after: 4d", "after: 7d"))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.kill(os.getpid(), signal.SIGHUP)
        assert wait_for(lambda: case_study_after(project) == timedelta(days=7))
    finally:
        w.stop()
        signal.signal(signal.SIGHUP, previous)

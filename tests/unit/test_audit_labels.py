"""Every audit action the code records has a Chinese label on the audit page.

The actions are found in the source: every `audit_record(action=…)` call under src/zige. A
literal is taken as it is; an f-string `prefix.{event}` whose `event` is a parameter of the
enclosing function is expanded with the literal `event=` values of that function's calls; the
few other forms (a status, a job name, a transition table) are expanded from the value sets
they are drawn from. A form the resolver does not know fails the test, so a new kind of action
cannot slip past it either.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from zige.audit.selectors import KNOWN_ACTIONS, action_label

SRC = Path(__file__).resolve().parents[2] / "src" / "zige"


def _calls_of(tree: ast.AST, name: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if called == name:
                yield node


def _enclosing(tree: ast.AST, call: ast.Call) -> ast.FunctionDef:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(child is call for child in ast.walk(node)):
            inner = node  # the innermost wins (walk visits outer ones first)
    return inner


def _family_values() -> dict[str, set[str]]:
    """The value sets behind the f-strings that are not fed by an `event=` argument."""
    from zige.notifications.jobs import JOB_LABELS
    from zige.notifications.models import InboxStatus
    from zige.verification.models import TaskStatus

    return {"task.": set(TaskStatus.values), "inbox.": set(InboxStatus.values), "job.": set(JOB_LABELS)}


def emitted_actions() -> dict[str, str]:
    """Every action code the application can record -> where (file:line)."""
    from zige.feeds.suggestions import TRANSITIONS as SUGGESTION_TRANSITIONS
    from zige.ledger.services import MARK_TRANSITIONS

    tables = {
        "action": set(SUGGESTION_TRANSITIONS.values()),
        "MARK_TRANSITIONS": set(MARK_TRANSITIONS.values()),
    }
    families = _family_values()
    found: dict[str, str] = {}
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls_of(tree, "audit_record"):
            where = f"{path.relative_to(SRC)}:{call.lineno}"
            value = next((kw.value for kw in call.keywords if kw.arg == "action"), None)
            assert value is not None, f"{where}: audit_record without action="
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found[value.value] = where
            elif isinstance(value, ast.JoinedStr):
                prefix = "".join(str(v.value) for v in value.values if isinstance(v, ast.Constant))
                holes = [v.value for v in value.values if isinstance(v, ast.FormattedValue)]
                assert len(holes) == 1, f"{where}: unexpected action {ast.unparse(value)}"
                hole = holes[0]
                function = _enclosing(tree, call)
                params = {a.arg for a in (*function.args.args, *function.args.kwonlyargs)}
                if isinstance(hole, ast.Name) and hole.id == "event" and hole.id in params:
                    events = {
                        kw.value.value
                        for other in _calls_of(tree, function.name)
                        for kw in other.keywords
                        if kw.arg == "event" and isinstance(kw.value, ast.Constant)
                    }
                    assert events, f"{where}: no call of {function.name} with a literal event="
                    for event in events:
                        found[f"{prefix}{event}"] = where
                else:
                    assert prefix in families, f"{where}: add the values of {ast.unparse(value)} to this test"
                    for each in families[prefix]:
                        found[f"{prefix}{each}"] = where
            else:
                name = ast.unparse(value).split("[")[0]
                assert name in tables, f"{where}: add the values of {ast.unparse(value)} to this test"
                for each in tables[name]:
                    found[each] = where
    return found


def test_the_scan_finds_the_actions_of_every_family() -> None:
    found = emitted_actions()
    for code in ("pii.reveal", "payment_action.approved", "recovery_case.written_off", "fraud_case.fined",
                 "task.submitted", "inbox.quarantined", "job.daily_run", "suggestion.accepted",
                 "ledger.mark_remove", "tasks.for_run", "export_batch.created"):  # fmt: skip
        assert code in found, code
    assert len(found) > 80


def test_every_emitted_action_has_a_chinese_label() -> None:
    missing = {code: where for code, where in emitted_actions().items() if code not in KNOWN_ACTIONS}
    assert not missing, f"add these to zige.audit.selectors.KNOWN_ACTIONS: {missing}"


@pytest.mark.parametrize("code", sorted(KNOWN_ACTIONS))
def test_a_label_is_chinese(code: str) -> None:
    label = KNOWN_ACTIONS[code]
    assert label and not any("a" <= ch.lower() <= "z" for ch in label.replace("API", "").replace("CSV", ""))
    assert action_label(code) == label


def test_status_values_of_imports_runs_messages_and_tasks_are_translated() -> None:
    from zige.audit.display import fields
    from zige.certification.models import RunStatus
    from zige.feeds.models import ImportStatus
    from zige.notifications.models import MessageStatus
    from zige.verification.models import TaskStatus

    for target, choices in (("import", ImportStatus), ("run", RunStatus), ("run_messages", MessageStatus),
                            ("unit_deadline_messages", MessageStatus), ("run_tasks", TaskStatus)):  # fmt: skip
        for value, label in choices.choices:
            assert fields({"status": value}, target) == [("状态", label)], (target, value)


def test_every_failure_code_has_a_short_chinese_name() -> None:
    from zige.audit.display import FAILURE_SHORT_ZH, fields
    from zige.feeds.failures import FAILURE_ZH, RUN_FAILURE_ZH

    assert set(FAILURE_ZH) | set(RUN_FAILURE_ZH) <= set(FAILURE_SHORT_ZH)
    assert fields({"code": "binary"}, "import") == [("代码", "含二进制内容，不是文本 CSV")]
    assert fields({"failure_code": "store_busy"}, "run") == [("失败代码", "证据库被占用")]


def test_generic_values_counts_ids_and_records() -> None:
    from zige.audit.display import fields

    assert fields({"kind": "rail"}, "import") == [("类型", "铁路出行")]
    assert fields({"kinds": {"stop": 2, "suspend": 1}}, "run") == [("类型", "停发 2，暂停发放 1")]
    assert fields({"actions": [1, 2]}, "run") == [("待遇处理", "#1、#2")]
    assert fields({"actions": list(range(1, 31))}, "run") == [
        ("待遇处理", "#1、#2、#3、#4、#5、#6、#7、#8、#9、#10 等，共 30 项")
    ]
    declined = fields(
        {"recipient": 23, "kind": "stop", "effective_month": "2026-03", "source": "verification",
         "in_force": 11, "in_force_state": "approved"}, "payment_action",
    )  # fmt: skip
    assert ("类型", "停发") in declined and ("来源", "单位核实") in declined
    assert ("进行中的待遇处理", "#11") in declined and ("进行中的待遇处理状态", "已审批") in declined
    assert all(name.isascii() is False for name, _ in declined)
    rows = fields({"items": [{"task": 4, "kind": "review"}] * 25}, "run")[0][1].split("\n")
    assert rows[0] == "核实任务 #4：疑点核查" and rows[-1] == "……共 25 项" and len(rows) == 21


def test_a_runs_reminders_read_as_reminders_to_people_not_unit_sms() -> None:
    """`messages.created` / `messages.skipped` are written by every run for the reminders to the
    people (SMS) and the units' notice lists, and by the sweep for the units' deadline SMS: the
    label must not call a run's 272 reminders to pensioners 生成单位提醒短信. Their counts read in
    Chinese, the unit channel as 单位通知 (not a unit)."""
    from zige.audit.display import fields
    from zige.audit.selectors import action_label

    assert "单位" not in action_label("messages.created") and "提醒" in action_label("messages.created")
    assert "单位" not in action_label("messages.skipped")
    shown = dict(
        fields(
            {"created": 272, "sms": 211, "unit": 61, "app_failed": 95, "cancelled": 0, "restored": 0},
            "run_messages",
        )
    )
    assert shown["单位通知"] == "61" and shown["短信"] == "211"
    assert all(not any("a" <= ch.lower() <= "z" for ch in label.replace("APP", "")) for label in shown), shown


def test_a_back_dated_runs_records_read_in_chinese() -> None:
    """A back-dated run's audit rows (`payment_action.run_backdated`, `messages.skipped`,
    `tasks.for_run`) name the later run as a run (`#N`), its date and why nothing was done."""
    from zige.audit.display import fields
    from zige.audit.selectors import action_label

    assert "未提出" in action_label("payment_action.run_backdated")
    shown = dict(
        fields(
            {"as_of": "2026-11-30", "later_run": 12, "later_as_of": "2026-12-31", "kinds": {"stop": 1}},
            "run",
        )
    )
    assert shown == {"基准日": "2026-11-30", "更晚的认证批次": "#12", "更晚批次的基准日": "2026-12-31",
                     "类型": "停发 1"}  # fmt: skip
    skipped = dict(fields({"skipped_because": "backdated", "later_run": 12, "cancelled": 1}, "run_messages"))
    assert skipped["跳过原因"] == "比对基准日早于已完成的认证批次" and skipped["更晚的认证批次"] == "#12"


def test_a_runs_held_actions_and_the_proposals_it_withdrew_read_in_chinese() -> None:
    """`payment_action.held_by_run` names the proposal the run withdrew (`withdrawn`) or left on
    its way (`in_force`) as `#N`, not as the record's own number; `withdrawn_held_by_run` shows each
    withdrawn action's figures and the held ones as figures, not JSON."""
    from zige.audit.display import fields
    from zige.audit.selectors import action_label

    assert "超出上限" in action_label("payment_action.withdrawn_held_by_run")
    why = "月数 1389 超出允许范围（不超过 1200 个月）"
    held = {"recipient": 3, "kind": "stop", "effective_month": "1911-03", "months": 1389, "amount": "4167000.00",
            "why": why}  # fmt: skip
    shown = dict(fields({"count": 2, "held": [{**held, "withdrawn": 12}, {**held, "in_force": 13}]}, "run"))
    assert shown["暂缓提出（超出上限，待人工复核）"] == (
        f"停发，1911-03 起 1389 个月 4,167,000.00 元，原因 {why}，撤回的待审批处理 #12\n"
        f"停发，1911-03 起 1389 个月 4,167,000.00 元，原因 {why}，进行中的待遇处理 #13"
    )
    withdrawal = {"action": 12, "recipient": 3, "kind": "stop", "run": 4, "effective_month": "2026-10", "months": 2,
                  "amount": "6000.00", "why": why,
                  "held_figures": {"effective_month": "1911-03", "months": 1389, "amount": "4167000.00"}}  # fmt: skip
    assert dict(fields({"count": 1, "withdrawals": [withdrawal]}, "run"))["撤回"] == (
        f"待遇处理 #12：停发，2026-10 起 2 个月 6,000.00 元，认证批次 #4，原因 {why}，"
        "本批次计算（超出上限） 1911-03 起 1389 个月 4,167,000.00 元"
    )


def _latin(label: str) -> bool:
    return any("a" <= ch.lower() <= "z" for ch in label.replace("SHA-256", "").replace("Parquet", ""))


def test_a_runs_counts_by_conclusion_read_in_chinese() -> None:
    """`run.succeeded` holds the run's count per conclusion (`eligible`, `stop`, …): the page showed
    `eligible 237，stop 11`; they read under the conclusions' names as the run page shows them.
    So do the other English keys of a run's rows (its tasks, the decisions' copy)."""
    from zige.audit.display import fields
    from zige.certification.models import Status

    succeeded = dict(
        fields(
            {"as_of": "2026-11-30", "recipients": 288, "changed": 0, "inputs_fingerprint": "9f15",
             "status": {"eligible": 237, "stop": 11, "suspend": 9, "review": 4, "pending": 27}},
            "run",
        )
    )  # fmt: skip
    labels = dict(Status.choices)
    assert succeeded["认证结论"] == (
        f"{labels['eligible']} 237，{labels['pending']} 27，{labels['review']} 4，{labels['suspend']} 9，"
        f"{labels['stop']} 11"
    )
    assert succeeded["认证结论"] == "具备资格 237，待核实 27，疑点核查 4，暂停发放 9，丧失资格 11"
    assert succeeded["认证人数"] == "288" and succeeded["结论变化"] == "0"
    # a run's own state is still its state
    assert fields({"status": "queued"}, "run") == [("状态", "排队中")]
    tasks = dict(
        fields({"created_unit": 27, "created_review": 4, "auto_closed": 0, "auto_closed_by_run": 1,
                "auto_closed_sha256": "e3b0"}, "run_tasks")
    )  # fmt: skip
    pruned = dict(
        fields({"as_of": "2026-11-30", "recipients": 288, "copy": "runs/1/decisions.parquet", "copy_rows": 288,
                "copy_sha256": "ab", "copy_status": {"eligible": 280, "pending": 8}, "keep": 7,
                "decisions_in_database": 288}, "run")
    )  # fmt: skip
    assert tasks["自动关闭的任务所属批次"] == "#1"
    assert pruned["副本中各结论人数"] == "具备资格 280，待核实 8"
    for shown in (succeeded, tasks, pruned):
        assert not [name for name in shown if _latin(name)], shown
        assert not [value for value in shown.values() if value.split(" ")[0] in labels], shown


def test_a_failed_login_s_reason_and_door_read_in_chinese() -> None:
    """`auth.login_failed` records why and through which door (the password change form's
    current password counts too); the page showed `reason bad_credentials，via password_change`."""
    from zige.audit.display import fields

    shown = dict(
        fields({"reason": "bad_credentials", "via": "password_change", "failures": 3}, "accounts.User")
    )
    assert shown == {"原因": "密码错误", "途径": "修改密码（当前密码）", "失败": "3"}
    for reason, label in (
        ("unknown_user", "用户名不存在"),
        ("locked", "账户已锁定"),
        ("inactive", "账户已停用"),
    ):
        assert fields({"reason": reason}, "accounts.User") == [("原因", label)]
    for via, label in (("web", "登录页"), ("api", "API 令牌"), ("admin", "管理后台")):
        assert fields({"via": via}, "accounts.User") == [("途径", label)]
    # another object's reason is free text
    assert fields({"reason": "locked"}, "payment_action") == [("原因", "locked")]


def test_an_imports_counts_and_a_new_users_account_read_in_chinese() -> None:
    """`import.succeeded` and `user.created` showed `rows_read 50505`, `role bureau_admin`,
    `is_active 是`, `locked_until —`: they read as the import page and the user form name them."""
    from zige.audit.display import fields

    imported = dict(
        fields({"rows_read": 50505, "rows_used": 50462, "rows_rejected": 41, "duplicate_rows": 2, "blank_rows": 0,
                "unmatched": 233, "created": 50462, "updated": 0}, "import")
    )  # fmt: skip
    assert imported["读取行数"] == "50505" and imported["未匹配名册"] == "233" and imported["信息变更"] == "0"
    user = dict(
        fields({"username": "unit", "role": "unit_operator", "is_active": True, "locked_until": None}, "user")
    )
    assert user == {"用户名": "unit", "角色": "单位经办人员", "启用": "是", "锁定至": "—"}
    for shown in (imported, user):
        assert not [name for name in shown if _latin(name)], shown


def test_a_blacklist_removal_s_records_read_in_chinese() -> None:
    """The removal's steps (移出黑名单) name the reason, the day, the note and the state in Chinese,
    as the entry's page lists them (`selectors.blacklist_history`)."""
    from zige.audit.display import fields
    from zige.audit.selectors import action_label

    assert action_label("blacklist.removed") == "审批通过移出黑名单"
    proposed = dict(
        fields({"status": "removal_proposed", "removal_reason": "credit_repaired", "removed_on": "2026-11-30",
                "note": "已缴清", "fraud_case": 7}, "blacklist")
    )  # fmt: skip
    assert proposed == {"状态": "移出待审批", "移出原因": "信用修复", "移出日期": "2026-11-30", "移出说明": "已缴清",
                        "冒领案件": "#7"}  # fmt: skip
    added = dict(fields({"subject_type": "unit", "since": "2026-01-05", "until": "2029-01-04"}, "blacklist"))
    assert added == {"对象": "单位", "列入日期": "2026-01-05", "列入期限": "2029-01-04"}
    assert dict(fields({"status": "listed", "reason": "未见决定书"}, "blacklist")) == {
        "状态": "在列", "驳回理由": "未见决定书",
    }  # fmt: skip

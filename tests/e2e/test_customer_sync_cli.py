"""``tenant-worker customers import`` as an operator runs it: refusals with line numbers (status 2),
a rejects file, dry runs, and a full sync with its removal guard."""

from __future__ import annotations

import csv
import json

from tests.conftest import new_phone, unique_slug
from tests.e2e.test_cli import cli

HEADER = "external_ref,subscription_ref,name,phone,plan,amount,currency,expires_on\n"


def test_customers_import_refuses_bad_rows_then_syncs_with_its_guard(worker_env, tmp_path):
    slug = unique_slug("sync")
    cli(
        worker_env, "tenant", "create", "--slug", slug, "--name", "Polder Net", "--timezone", "Europe/Amsterdam",
        "--originator", "PolderNet", "--windows", "5,3,1", "--sending-window", "00:00-00:00",
    )  # fmt: skip
    phones = [new_phone() for _ in range(4)]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + f"a,fiber,Ann,{phones[0]},Basic,10,EUR,2030-01-01\n"
        + "b,,=HYPERLINK(1),12345,Basic,ten,EUR,2030-01-01\n"
        + f"a,fiber,Ann,{phones[0]},Basic,10,EUR,2030-01-01\n"
        + f"a,tv,Ann,{phones[0]},TV,5,EUR,2030-01-01\n"
    )
    rejects = tmp_path / "rejects.csv"
    refused = cli(worker_env, "customers", "import", slug, str(bad), "--rejects", str(rejects), check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "line 3:" in refused.stderr and "amount 'ten'" in refused.stderr
    assert "line 4: external_ref 'a/fiber' repeats line 2" in refused.stderr
    with rejects.open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [r["line"] for r in written] == ["3", "4"] and written[0]["name"] == "'=HYPERLINK(1)"
    nothing = json.loads(cli(worker_env, "customers", "import", slug, str(bad), "--dry-run", "--allow-rejects",
                             "--json").stdout)  # fmt: skip
    assert (nothing["created"], nothing["rejected"], nothing["applied"]) == (2, 2, False)

    allowed = cli(worker_env, "customers", "import", slug, str(bad), "--allow-rejects")
    assert "2 created" in allowed.stdout and "2 rejected" in allowed.stdout

    good = tmp_path / "good.csv"
    good.write_text(HEADER + "".join(f"c{i},,Cy {i},{phones[i]},Basic,10,EUR,2030-01-01\n" for i in (1, 2, 3)))
    cli(worker_env, "customers", "import", slug, str(good))
    only_one = tmp_path / "one.csv"
    only_one.write_text(HEADER + f"c1,,Cy 1,{phones[1]},Basic,10,EUR,2030-01-01\n")
    guarded = cli(worker_env, "customers", "import", slug, str(only_one), "--full-sync", check=False)
    assert guarded.returncode == 2 and "would remove 4 of 5 subscriptions, more than 10%" in guarded.stderr
    dry = json.loads(
        cli(worker_env, "customers", "import", slug, str(only_one), "--full-sync", "--max-removals", "4", "--dry-run",
            "--json").stdout
    )  # fmt: skip
    assert (dry["removed"], dry["unchanged"], dry["samples"]["removed"]) == (4, 1, ["a/fiber", "a/tv", "c2", "c3"])
    synced = cli(worker_env, "customers", "import", slug, str(only_one), "--full-sync", "--max-removals", "100%")
    assert "4 removed" in synced.stdout

"""The command line's large-log paths that need no Spark: ``simulate --partitioned``, the choice of
engine in ``features``, ``train`` on a parquet folder (what ``features --engine spark`` writes) and the
dashboard command's refusals. The Spark engine itself is tested in ``tests/test_spark_*.py``."""
from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from churnlib.cli import main
from churnlib.models import load_training_table


def test_simulate_partitioned_writes_a_folder_one_log(tmp_path: Path, capsys):
    out = tmp_path / "log"
    assert main(["simulate", "--users", "120", "--days", "10", "--partitioned", "--chunk-users", "50",
                 "--out", str(out)]) == 0
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 3  # 50 + 50 + 20 users
    table = pq.read_table(out)
    ids = pd.Series(table.column("userId").to_pylist())
    assert table.num_rows > 0 and ids[ids != ""].nunique() == 120  # "" : logged-out guests, as in Sparkify
    assert f"{table.num_rows:,} events" in capsys.readouterr().out


def test_events_needs_partitioned_and_duckdb_needs_dates(tmp_path: Path, capsys):
    assert main(["simulate", "--events", "1e5", "--out", str(tmp_path / "x.parquet")]) == 2
    assert "--partitioned" in capsys.readouterr().err
    assert main(["features", "--events", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "f.parquet")]) == 2
    assert "--as-of" in capsys.readouterr().err


def test_train_reads_a_parquet_folder_as_one_table(sim_trained, tmp_path: Path):
    _, table = sim_trained
    folder = tmp_path / "features.parquet"  # as Spark writes it: parts, a _SUCCESS marker, checksums
    folder.mkdir()
    half = len(table) // 2
    table.iloc[:half].to_parquet(folder / "part-00000.parquet", index=False)
    table.iloc[half:].to_parquet(folder / "part-00001.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.parquet.crc").write_bytes(b"\0")
    from_folder = load_training_table(folder, "userId", "churned")
    single = tmp_path / "single.parquet"
    table.to_parquet(single, index=False)
    from_file = load_training_table(single, "userId", "churned")
    pd.testing.assert_frame_equal(from_folder.reset_index(drop=True), from_file.reset_index(drop=True))


def test_dashboard_refuses_a_missing_folder_and_a_busy_port(tmp_path: Path, capsys):
    assert main(["dashboard", "--reports-dir", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "--reports-dir", str(tmp_path), "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err

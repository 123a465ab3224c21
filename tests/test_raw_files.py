"""What ``m5 run`` makes of the raw folder: loose Kaggle files, the zipped Kaggle download, a
foreign archive, hidden files and unrelated ones (issue 23, defect 4)."""

import shutil
import zipfile
from pathlib import Path

import pytest

from m5_assets.cli import main
from m5_assets.raw_files import RawFilesError, check_raw_folder, locate_raw_files, unpack_dir
from m5_assets.warehouse import table_path

RAW_TABLES = ("raw_calendar", "raw_sell_prices", "raw_sales")
SALES = "sales_train_evaluation.csv"


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    """An empty data folder that ``m5 run`` works on, with its own Dagster instance."""
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "data" / "raw").mkdir(parents=True)
    return tmp_path / "data"


def _kaggle_zip(tiny_raw: Path, target: Path, folder: str = "") -> None:
    """The archive as Kaggle serves it: both sales files, a sample submission beside them."""
    sales = (tiny_raw / SALES).read_text()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("calendar.csv", "sell_prices.csv", SALES):
            archive.write(tiny_raw / name, folder + name)
        # A different validation file: reading it instead of the evaluation one would show.
        archive.writestr(folder + "sales_train_validation.csv", sales.replace("_evaluation,", "_validation,"))
        archive.writestr(folder + "sample_submission.csv", "id,F1\n")


def _raw_tables(data: Path) -> dict[str, bytes]:
    return {t: table_path(data / "warehouse", t).read_bytes() for t in RAW_TABLES}


def test_m5_run_reads_the_kaggle_archive_into_the_same_raw_tables_as_loose_files(
    tmp_path, data, tiny_raw, monkeypatch, capsys
):
    loose = tmp_path / "loose"
    shutil.copytree(tiny_raw, loose / "raw")
    monkeypatch.setenv("M5_DATA_DIR", str(loose))
    assert main(["run", "--skip-model"]) == 0
    archive = data / "raw" / "m5-forecasting-accuracy.zip"
    _kaggle_zip(tiny_raw, archive)
    before = archive.read_bytes()
    monkeypatch.setenv("M5_DATA_DIR", str(data))
    capsys.readouterr()

    assert main(["run", "--skip-model"]) == 0

    out = capsys.readouterr().out
    assert f"using the Kaggle archive {archive}: calendar.csv, sell_prices.csv, {SALES}" in out
    assert "demo data" not in out and "checks: 14 of 14 passed" in out
    assert _raw_tables(data) == _raw_tables(loose)
    # Nothing is written into raw/: the archive is unpacked beside it.
    assert [p.name for p in (data / "raw").iterdir()] == [archive.name] and archive.read_bytes() == before
    (unpacked,) = unpack_dir(data / "raw").iterdir()
    assert sorted(p.name for p in unpacked.iterdir()) == ["calendar.csv", SALES, "sell_prices.csv"]


def test_an_archive_with_its_files_in_a_folder_is_read_and_unpacked_once(data, tiny_raw):
    _kaggle_zip(tiny_raw, data / "raw" / "m5.zip", folder="m5-forecasting-accuracy/")
    first = locate_raw_files(data / "raw")
    assert first.sales.name == SALES and first.sales.read_bytes() == (tiny_raw / SALES).read_bytes()
    made = first.sales.stat().st_mtime_ns
    assert locate_raw_files(data / "raw") == first and first.sales.stat().st_mtime_ns == made


def test_m5_run_refuses_a_foreign_archive_naming_what_it_holds(data, capsys):
    archive = data / "raw" / "export.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("notes.txt", "hello\n")
        opened.writestr("shop/sales.csv", "id,d_1\n")

    assert main(["run", "--skip-model"]) == 2

    err = capsys.readouterr().err
    assert "export.zip is not the Kaggle M5 archive" in err and "notes.txt, shop/sales.csv" in err, err
    assert "calendar.csv, sell_prices.csv" in err  # what it lacks
    assert [p.name for p in (data / "raw").iterdir()] == ["export.zip"]
    assert not (data / "warehouse").exists() and not unpack_dir(data / "raw").exists()


def test_a_half_copied_archive_is_refused_as_unreadable(data, tiny_raw):
    whole = data / "whole.zip"
    _kaggle_zip(tiny_raw, whole)
    (data / "raw" / "m5-forecasting-accuracy.zip").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(RawFilesError, match="not a readable zip archive.*is the download or copy complete"):
        check_raw_folder(data / "raw")


def test_loose_files_beside_an_archive_are_refused_rather_than_one_chosen(data, tiny_raw):
    shutil.copy(tiny_raw / "calendar.csv", data / "raw")
    _kaggle_zip(tiny_raw, data / "raw" / "m5-forecasting-accuracy.zip")
    with pytest.raises(
        RawFilesError, match=r"both loose CSV files \(calendar.csv\) and the archive\(s\) m5-forecasting-accuracy.zip"
    ):
        check_raw_folder(data / "raw")


def test_m5_run_generates_the_demo_set_into_a_folder_holding_only_hidden_files(data, capsys):
    (data / "raw" / ".gitkeep").write_text("")
    (data / "raw" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")

    assert main(["run", "--skip-model", "--scale", "tiny"]) == 0

    assert "generating the 'tiny' demo data set" in capsys.readouterr().out
    assert {".gitkeep", ".DS_Store", "calendar.csv", "sell_prices.csv", SALES} == {
        p.name for p in (data / "raw").iterdir()
    }


def test_m5_run_refuses_a_folder_holding_an_unrelated_file_and_writes_nothing(data, capsys):
    (data / "raw" / "notes.txt").write_text("my notes\n")

    assert main(["run", "--skip-model", "--scale", "tiny"]) == 2

    err = capsys.readouterr().err
    assert "holds no Kaggle files: found notes.txt" in err and "m5-forecasting-accuracy.zip" in err, err
    assert [p.name for p in (data / "raw").iterdir()] == ["notes.txt"]
    assert not (data / "warehouse").exists()


def test_a_damaged_archive_member_is_refused_by_name_and_leaves_nothing_unpacked(data):
    archive = data / "raw" / "m5-forecasting-accuracy.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as opened:
        for name in ("calendar.csv", "sell_prices.csv", SALES):
            opened.writestr(name, "a,b\n1,2\n" * 100)
    damaged = bytearray(archive.read_bytes())
    damaged[damaged.find(b"1,2\na,b")] = ord("7")  # a flipped byte in calendar.csv's data
    archive.write_bytes(bytes(damaged))
    with pytest.raises(RawFilesError, match="Bad CRC-32 for file 'calendar.csv'.*is the download complete"):
        locate_raw_files(data / "raw")
    assert list(unpack_dir(data / "raw").iterdir()) == []

import shutil
from pathlib import Path

import pytest

from services.faces import weights
from services.faces.weights import UrlSource, WeightFile, WeightsUnavailableError, resolve, sha256_of
from tests.support import SHARED

pytestmark = pytest.mark.models

SOURCE = SHARED / "models" / weights.MINI_XCEPTION.name


def test_present_file_is_checked_and_used(tmp_path):
    shutil.copy(SOURCE, tmp_path / SOURCE.name)
    assert resolve(weights.MINI_XCEPTION, tmp_path) == tmp_path / SOURCE.name


def test_corrupt_file_is_refused(tmp_path):
    (tmp_path / SOURCE.name).write_bytes(SOURCE.read_bytes()[:-10])
    with pytest.raises(WeightsUnavailableError, match="does not match its sha256"):
        resolve(weights.MINI_XCEPTION, tmp_path)


def test_missing_file_is_downloaded_and_verified(tmp_path):
    weight = WeightFile(SOURCE.name, sha256_of(SOURCE), UrlSource(SOURCE.resolve().as_uri()))
    target = tmp_path / "models"
    assert resolve(weight, target).read_bytes() == SOURCE.read_bytes()


def test_download_with_wrong_checksum_leaves_nothing(tmp_path):
    weight = WeightFile(SOURCE.name, "0" * 64, UrlSource(SOURCE.resolve().as_uri()))
    with pytest.raises(WeightsUnavailableError, match="expected 0000") as error:
        resolve(weight, tmp_path)
    assert SOURCE.name in str(error.value) and "FACEGATE_WEIGHTS_DIR" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_source_names_the_file_and_how_to_supply_it(tmp_path):
    weight = WeightFile("model.h5", "1" * 64, UrlSource((tmp_path / "nowhere" / "model.h5").as_uri()))
    with pytest.raises(WeightsUnavailableError) as error:
        resolve(weight, tmp_path)
    message = str(error.value)
    assert "model.h5 is missing and could not be downloaded" in message and str(tmp_path) in message


def test_file_without_published_checksum_must_be_supplied(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="facial_expression_model_weights.pth is missing"):
        resolve(weights.DEEPFACE_EMOTION, Path(tmp_path))


def test_a_read_only_weights_folder_is_read_and_downloads_go_to_the_data_folder(tmp_path):
    """Like ../shared/models: read-only, without MTCNN's files (they come from facenet-pytorch's wheel)."""
    shared, own = tmp_path / "shared", tmp_path / "data" / "models"
    shared.mkdir()
    shutil.copy(SOURCE, shared / SOURCE.name)
    shared.chmod(0o555)
    try:
        assert resolve(weights.MINI_XCEPTION, shared, own) == shared / SOURCE.name
        missing = WeightFile("other.hdf5", sha256_of(SOURCE), UrlSource(SOURCE.resolve().as_uri()))
        assert resolve(missing, shared, own) == own / "other.hdf5"
        assert resolve(missing, shared, own) == own / "other.hdf5"  # found there the next time
        assert sorted(p.name for p in shared.iterdir()) == [SOURCE.name]
    finally:
        shared.chmod(0o755)

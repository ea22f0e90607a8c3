"""The run folder's `run.json`: written by training, read back by `eval` and the surprise commands."""

from __future__ import annotations

import json

import pytest

from forethought.training.run_folder import RunPaths, held_out_episodes, read_run_info, write_run_info


def _model_folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def test_held_out_episodes_from_run_json(tmp_path):
    write_run_info(tmp_path, {"train_episodes": [0, 1, 3], "val_episodes": [2, 4, 9]})
    ids, note = held_out_episodes(tmp_path, 5)
    assert ids == [2, 4] and "held-out" in note  # ids past the dataset's end are dropped
    ids, note = held_out_episodes(tmp_path / "nothing", 20)
    assert ids == [18, 19] and "NOT guaranteed" in note
    (tmp_path / "run.json").write_text(json.dumps({"val_episodes": []}))
    ids, note = held_out_episodes(tmp_path, 3)
    assert ids == [2] and "lists no validation episodes" in note


def test_run_paths_from_a_run_folder_or_a_model_folder(tmp_path):
    run = tmp_path / "run"
    _model_folder(run / "model")
    assert write_run_info(run, {"data": "/datasets/tworoom", "val_episodes": [1]}) == run / "run.json"
    assert read_run_info(run) == {"data": "/datasets/tworoom", "val_episodes": [1]}
    for given in (run, run / "model"):  # the model folder finds its run next to it
        paths = RunPaths.resolve(given)
        assert (paths.model, paths.run, str(paths.data)) == (run / "model", run, "/datasets/tworoom")
    assert RunPaths.resolve(run, data=tmp_path / "other").data == tmp_path / "other"

    lone = RunPaths.resolve(_model_folder(tmp_path / "lone" / "model"))
    assert lone.run is None and lone.data is None and read_run_info(tmp_path / "lone") is None
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        RunPaths.resolve(tmp_path)

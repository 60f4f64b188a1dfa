"""manifests.outdir: the one rule for who may write into a folder."""

import json

import pytest

from manifests.outdir import MARKER, OutputFolderError, check_not_input, claim, foreign_files

OUTPUTS = ("results.csv", "summary.md", "lq/**", "hq/*.png")


def test_a_new_or_empty_folder_is_claimed_with_the_commands_marker(tmp_path):
    claim(tmp_path / "new", "cmd", OUTPUTS)
    assert json.loads((tmp_path / "new" / MARKER).read_text())["command"] == "cmd"
    (tmp_path / "empty").mkdir()
    claim(tmp_path / "empty", "cmd", OUTPUTS)
    assert (tmp_path / "empty" / MARKER).is_file()


def test_a_folder_of_foreign_files_is_refused_naming_them_and_left_as_it_was(tmp_path):
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "photos" / "cat.jpg").write_bytes(b"cat")
    (home / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match=r"did not write \(notes.txt, photos/cat.jpg\)"):
        claim(home, "cmd", OUTPUTS)
    assert not (home / MARKER).exists() and (home / "notes.txt").read_text() == "mine"
    # a file that merely bears an output's name, without the file an earlier run always wrote, is the user's
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.md").write_text("my own summary")
    with pytest.raises(OutputFolderError, match=r"did not write \(summary.md\)"):
        claim(mine, "cmd", OUTPUTS, signature="results.csv")
    (tmp_path / "x" / "hq").mkdir(parents=True)
    (tmp_path / "x" / "hq" / "a.jpg").write_bytes(b"")  # inside an output folder, but not an output's name
    assert foreign_files(claim.__globals__["Store"](tmp_path / "x"), "cmd", OUTPUTS) == ["hq/a.jpg"]
    (tmp_path / "y" / "stuff").mkdir(parents=True)  # an empty folder of someone else's
    with pytest.raises(OutputFolderError, match=r"stuff/"):
        claim(tmp_path / "y", "cmd", OUTPUTS)


def test_a_folder_of_only_earlier_outputs_is_the_commands_and_a_marked_one_stays_so(tmp_path):
    old = tmp_path / "old"
    (old / "lq" / "deep").mkdir(parents=True)
    (old / "lq" / "deep" / "x.png").write_bytes(b"")
    (old / "results.csv").write_text("a,b\n")
    (old / ".results.csv.tmp-123").write_text("half")  # an interrupted atomic write
    claim(old, "cmd", OUTPUTS, signature="results.csv")
    (old / "README.txt").write_text("the user's note in the command's own folder")
    claim(old, "cmd", OUTPUTS)  # the marker makes it the command's: the note is never written over
    with pytest.raises(OutputFolderError, match="holds the output of cmd, not of other"):
        claim(old, "other", ("results.csv",))
    (old / MARKER).write_text("{broken")
    with pytest.raises(OutputFolderError, match=r"\.bokehgen\.json: not a bokehgen marker"):
        claim(old, "cmd", OUTPUTS)


def test_no_output_resolves_to_an_input(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "p.png").write_bytes(b"")
    with pytest.raises(OutputFolderError, match="is also an input"):
        check_not_input(photos / "p.png", [photos / "p.png"])
    with pytest.raises(OutputFolderError, match="lies inside the input"):
        claim(photos / "out", "cmd", OUTPUTS, inputs=[photos])
    with pytest.raises(OutputFolderError, match="holds the input"):
        claim(tmp_path, "cmd", OUTPUTS, inputs=[photos / "p.png"])
    (tmp_path / "link").symlink_to(photos / "p.png")
    with pytest.raises(OutputFolderError, match="is also an input"):  # through a symlink
        check_not_input(tmp_path / "link", [photos / "p.png"])
    assert not (photos / "out").exists()

"""`vid2act view`: dataset episodes side by side under their instructions, and its refusals."""
import imageio.v3 as iio
import pytest

from conftest import vid2act


def test_view_draws_the_chosen_episodes(demos, tmp_path):
    run = vid2act("view", demos, "--episodes", "0,2,3", "--out", tmp_path / "grid.gif", "--scale", 2)
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == str(tmp_path / "grid.gif")
    frames = iio.imread(tmp_path / "grid.gif")
    # three cells of 64x2 (+2 px border each side) side by side; caption strip above 48x2 frames
    assert frames.shape[2] == 3 * (64 * 2 + 4) and frames.shape[1] > 48 * 2
    run = vid2act("view", demos, "--out", tmp_path / "grid.mp4")
    assert run.code == 0, run.stderr
    assert (tmp_path / "grid.mp4").stat().st_size > 0


@pytest.mark.parametrize("args, fragment", [
    (["--episodes", "0,99"], "episode 99 does not exist"),
    (["--episodes", "a,b"], "give episode numbers separated by commas"),
    (["--scale", "0"], "--scale must lie between 1 and 16"),
    (["--out", "grid.png"], "write a .gif or an .mp4"),
])
def test_bad_view_options(demos, tmp_path, args, fragment):
    out = ["--out", tmp_path / "grid.gif"] if "--out" not in args else []
    run = vid2act("view", demos, *args, *out)
    assert run.code == 2 and fragment in run.stderr, run.stderr
    assert not list(tmp_path.iterdir())

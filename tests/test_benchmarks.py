"""The GPU benchmark runs where no GPU is: it says so and times one CPU step of each training phase."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_bench_gpu_runs_one_cpu_step_of_each_phase_without_cuda(tmp_path, capsys, monkeypatch):
    import bench_gpu
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    bench_gpu.main(["--config", "tiny", "--batch", "2", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "no CUDA device" in text
    rows = [line.split() for line in text.splitlines() if line.strip().split()[:1] in (["isr1"], ["bokeh"], ["isr"])]
    assert [r[0] for r in rows] == ["isr1", "bokeh", "isr"] and all(float(r[1]) > 0 for r in rows)

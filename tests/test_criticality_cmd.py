"""``initlab criticality``: the JSON and HTML it writes, and one-line errors."""

from __future__ import annotations

import json

import pytest

from initlab.cli import main


def test_writes_json_and_page(tmp_path, capsys):
    main(["criticality", "--activation", "tanh", "--sigma-b2", "0.05", "--grid", "3",
          "--out", str(tmp_path)])  # fmt: skip
    data = json.loads((tmp_path / "criticality.json").read_text())
    assert data["critical_sigma_w2"] == pytest.approx(1.761, abs=1e-3)
    assert data["recommended_sigma_w"] == pytest.approx(1.761**0.5, abs=1e-3)
    depths = {round(d["sigma_w2"] / data["critical_sigma_w2"], 2): d["six_xi_c"]
              for d in data["trainable_depth"]}  # fmt: skip
    assert depths[0.99] > 5 * depths[0.9] and depths[1.01] > 5 * depths[1.1]
    assert len(data["phase_diagram"]["xi_c"]) == 3
    page = (tmp_path / "criticality.html").read_text()
    assert "critical sigma_w^2" in page and "data:image/svg+xml" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "1"], "--grid must be between 2 and 200"),
        (["--sigma-w2-range", "3,1"], "Bad --sigma-w2-range"),
        (["--activation", "tanhh"], "Did you mean 'tanh'"),
    ],
)
def test_bad_input_is_one_line(run_cli, tmp_path, args, message):
    code, _, err = run_cli(["criticality", "--out", str(tmp_path), *args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_probe_jacobian_flag_prints_and_writes_the_spectrum(tmp_path, capsys):
    path = tmp_path / "probe.json"
    main(["probe", "--model", "initlab.experiments.presets_chaos:vanilla_cnn:depth=3,channels=2",
          "--input-shape", "1,28,28", "--batch", "8", "--init", "delta_orthogonal", "--jacobian",
          "--json", str(path)])  # fmt: skip
    out = capsys.readouterr().out
    assert "Jacobian (exact, 4 inputs, J 10 x 784)" in out.replace("\n", " ")
    spectrum = json.loads(path.read_text())["jacobian"]
    assert len(spectrum["values"]) == 4 * 10 and spectrum["predicted_mean"] > 0

"""Acceptance: InfluxData's JavaScript client (@influxdata/influxdb-client,
from the npm registry) writes to the http listener unchanged.

Tests run on loopback only and never fetch packages, so the client must be
installed beforehand, into the build directory:

    npm install --prefix BUILD/js @influxdata/influxdb-client

The test skips when node or the package is absent. The client POSTs to
/api/v2/write with `Authorization: Token …`, gzip'd once a batch passes
1000 bytes; its points must each be in the file once.
"""
import os
import shutil
import subprocess

import h5py
import pytest

from recorder_fixture import BUILD, SEC, T0
from recorder_fixture import recorder  # noqa: F401 (pytest fixture)

STREAM = """
- name: weather
  match: { measurement: weather }
  group: "/{station}"
  layout: table
  channels: { temperature: { dtype: float64 }, seq: { dtype: int64 } }
"""
MODULES = os.path.join(BUILD, "js", "node_modules")
POINTS = 12000

SCRIPT = r"""
const {InfluxDB, Point} = require('@influxdata/influxdb-client');
const [url, token, points, t0] = process.argv.slice(2);
const api = new InfluxDB({url, token, timeout: 30000})
  .getWriteApi('org', 'bucket', 's', {batchSize: 5000, maxRetries: 0});
for (let i = 0; i < Number(points); i++) {
  api.writePoint(new Point('weather').tag('station', 'js' + (i % 3))
    .floatField('temperature', i / 2).intField('seq', i)
    .timestamp(Number(t0) + i));
}
api.close().then(() => console.log('written'),
                 (e) => { console.error('failed', e); process.exit(1); });
"""


@pytest.mark.skipif(not shutil.which("node"), reason="node not installed")
def test_javascript_client(recorder, tmp_path):
    if not os.path.isdir(os.path.join(MODULES, "@influxdata", "influxdb-client")):
        pytest.skip(f"@influxdata/influxdb-client not installed in {MODULES} "
                    f"(npm install --prefix {os.path.dirname(MODULES)} "
                    f"@influxdata/influxdb-client)")
    rec = recorder(STREAM, listen=[{"protocol": "http", "transport": "tcp",
                                    "token": "js-token"}])
    script = tmp_path / "write.js"
    script.write_text(SCRIPT)
    res = subprocess.run(["node", str(script), f"http://127.0.0.1:{rec.port()}", "js-token",
                          str(POINTS), str(T0 // SEC)], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, NODE_PATH=MODULES))
    assert res.returncode == 0 and "written" in res.stdout, res
    # a wrong token is refused, and the client says so
    res = subprocess.run(["node", str(script), f"http://127.0.0.1:{rec.port()}", "wrong",
                          "1", str(T0 // SEC)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, NODE_PATH=MODULES))
    assert res.returncode == 1 and "401" in res.stderr + res.stdout, res
    rec.stop()
    seqs = []
    for path in rec.files():
        with h5py.File(path, "r") as f:
            for station in f:
                time = f[station]["time"][...]
                seq = f[station]["seq"][...]
                assert ((time // SEC - T0 // SEC) == seq).all()
                seqs.extend(seq.tolist())
    assert sorted(seqs) == list(range(POINTS))

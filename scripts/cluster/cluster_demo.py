"""make cluster-demo: the daily and options workflows, locally and through the running Slurm, compared.

Run by scripts/cluster/cluster_demo.sh after slurm_up.sh (SLURM_CONF set). Work folder: argv[1].
"""

import sys
from pathlib import Path

from cxq_data.cluster import run_cluster_demo

root = Path(sys.argv[1] if len(sys.argv) > 1 else "cluster-demo").resolve()
steps = run_cluster_demo(Path(__file__).resolve().parents[2], root)
print(f"cluster-demo: work folder {root}")
for step in steps:
    print(f"  {step.workflow:8s} local {step.local.seconds:5.1f} s, Slurm {step.slurm.seconds:5.1f} s "
          f"({len(step.slurm.slurm_jobs)} Slurm jobs), {step.files} files identical: {step.identical}")
sys.exit(0 if all(s.identical for s in steps) else 1)

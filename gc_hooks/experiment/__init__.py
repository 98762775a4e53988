"""GC tuning experiments: every combination of collector, heap and JDK run as `osv-java run`, repeated and
interleaved, measured, and reported with medians and confidence intervals (`osv-java gc-experiment`).

design: the configurations and the order of the runs; stats: medians and bootstrap intervals;
measure: what one run's GC log, output and exit say; execute: one run as a subprocess, sampled from
/proc; report: the aggregate, the recommendation and the files; plots: the PNGs.
"""

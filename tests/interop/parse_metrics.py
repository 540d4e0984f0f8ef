"""Parses an OpenMetrics text exposition read from stdin with the Prometheus
project's own Python parser (prometheus-client, PyPI), which nobody here
wrote, and prints its families as JSON: {name: {"type": ..., "samples":
[{"name": ..., "labels": {...}, "value": ...}]}}. A document the parser
refuses makes it raise and exit non-zero.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples
        ],
    }
print(json.dumps(families))

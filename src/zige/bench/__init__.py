"""The province-scale benchmark (issue 6): generated stores, the scan floor, baselines, `zige bench`."""

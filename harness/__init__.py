"""Helpers shared by the browser tests (tests/) and the benchmarks (bench/): starting the app on
a free port, headless Chromium with a fake camera, a byte-counting proxy, process CPU and memory.
Not part of the product: nothing in facemask/ or the pages imports it."""

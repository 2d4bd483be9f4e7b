"""Write the device traces that the job file names (device_conf_file,
device_avail_file) in FedScale's own format: Python pickles of dicts keyed
by int client id, as FedScale's aggregator.py (load_client_profile) and
client_manager.py read them with pickle.load. The content is that of
writeTraces in runtime/cmd/aggregator/examples_test.go (which writes the
same dicts as JSON, with string keys); our runtime reads the pickles too.

usage: /usr/bin/python3 write_traces.py DIR
"""
import os
import pickle
import sys

CAPACITY = {
    1: {"computation": 20, "communication": 10000},
    2: {"computation": 35, "communication": 5000},
    3: {"computation": 12, "communication": 20000},
}
BEHAVE = {
    1: {"duration": 1000000, "inactive": [1000000], "finish_time": 1000000, "active": [0], "model": "x"},
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, value in (("client_device_capacity", CAPACITY), ("client_behave_trace", BEHAVE)):
    with open(os.path.join(out, name), "wb") as f:
        pickle.dump(value, f)

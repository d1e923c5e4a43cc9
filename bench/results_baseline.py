#!/usr/bin/env python3
"""The straightforward Python standard-library rejoin that `batchpipe ingest` + `batchpipe results` are
measured against (bench/results-bench.ts).

Load every line of the output file(s) into a dict by custom_id, then walk the input CSV and write the
joined CSV: the input's columns, then result, result_status, result_error (the same layout and cell
text as `batchpipe results --format csv` for chat completions without a JSON schema). Neither slowed
down on purpose nor tuned: json.loads per line, csv.reader/csv.writer.

    python3 bench/results_baseline.py INPUT.csv OUTPUT.csv --id-column id RESULTS.jsonl [MORE.jsonl ...]
"""
import argparse
import csv
import json
import sys


def outcome(line):
    """(status, result, error) of one output/error-file line."""
    response = line.get("response")
    if response and 200 <= response["status_code"] < 300:
        return ("succeeded", response["body"]["choices"][0]["message"]["content"], "")
    if response:
        error = (response.get("body") or {}).get("error") or {}
        code = error.get("code") or error.get("type") or f"http_{response['status_code']}"
    else:
        error = line.get("error") or {}
        code = error.get("code")
    return ("failed", "", f"{code}: {error.get('message', '')}")


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("results", nargs="+")
    parser.add_argument("--id-column", required=True)
    args = parser.parse_args(argv)

    outcomes = {}
    for path in args.results:
        with open(path, encoding="utf-8") as f:
            for text in f:
                if text.strip():
                    line = json.loads(text)
                    outcomes[line["custom_id"]] = outcome(line)

    with open(args.input, newline="", encoding="utf-8") as src, open(
        args.output, "w", newline="", encoding="utf-8"
    ) as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst, lineterminator="\n")
        header = next(reader)
        id_index = header.index(args.id_column)
        writer.writerow(header + ["result", "result_status", "result_error"])
        for row in reader:
            status, result, error = outcomes.get(row[id_index], ("pending", "", ""))
            writer.writerow(row + [result, status, error])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

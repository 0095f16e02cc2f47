// Differential oracle for snapshotd-wire's Go-compatible JSON (run by tests/interop_go.rs).
//
// Reads one JSON document per input line, decodes it with encoding/json into a struct shaped
// like the snapshotter request (field names and types from the protocol spec §3), and prints
// Go's json.Encoder output for it, or "ERR" when Go rejects the input.
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"time"
)

type request struct {
	Type                   uint8
	BackupDatabase         string
	RestoreDatabase        string
	BackupRetentionPolicy  string
	RestoreRetentionPolicy string
	ShardID                uint64
	Since                  time.Time
	ExportStart            time.Time
	ExportEnd              time.Time
	UploadSize             int64
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			out.WriteString("ERR\n")
			continue
		}
		if err := enc.Encode(&r); err != nil {
			out.WriteString("ERR\n")
		}
	}
}

// Differential oracle for snapshotd-wire's Go-compatible JSON (run by tests/interop_go.rs).
//
// Reads one JSON document per input line, decodes it with encoding/json and prints Go's
// encoding of it, or "ERR" when Go rejects the input. A line starting with "I " holds an info
// response (printed with json.Encoder), "M " a portable manifest (printed as the hex of
// json.MarshalIndent(m, "", "  ")); any other line is a snapshotter request (json.Encoder).
// Field names, tags and types come from the protocol spec (§3, §4.3, §8.4).
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
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

type info struct {
	Paths []string
}

type metaEntry struct {
	FileName string `json:"fileName"`
	Size     int64  `json:"size"`
}

type entry struct {
	Database     string `json:"database"`
	Policy       string `json:"policy"`
	ShardID      uint64 `json:"shardID"`
	FileName     string `json:"fileName"`
	Size         int64  `json:"size"`
	LastModified int64  `json:"lastModified"`
}

type manifest struct {
	Meta     metaEntry `json:"meta"`
	Limited  bool      `json:"limited"`
	Files    []entry   `json:"files"`
	Database string    `json:"database,omitempty"`
	Policy   string    `json:"policy,omitempty"`
	ShardID  uint64    `json:"shard_id,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		line := in.Bytes()
		var err error
		switch {
		case bytes.HasPrefix(line, []byte("I ")):
			var r info
			if err = json.Unmarshal(line[2:], &r); err == nil {
				err = enc.Encode(&r)
			}
		case bytes.HasPrefix(line, []byte("M ")):
			var m manifest
			var b []byte
			if err = json.Unmarshal(line[2:], &m); err == nil {
				if b, err = json.MarshalIndent(&m, "", "  "); err == nil {
					out.WriteString(hex.EncodeToString(b) + "\n")
				}
			}
		default:
			var r request
			if err = json.Unmarshal(line, &r); err == nil {
				err = enc.Encode(&r)
			}
		}
		if err != nil {
			out.WriteString("ERR\n")
		}
	}
}

// walbench: times etcd 3.4's own Go wal package for the snapshotd-wal benchmark, so both
// implementations are measured on the same disk in the same run. It only calls etcd's
// public API. Build (GOPATH mode, offline):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o walbench .
//
//   walbench append -entries N -size S -saves K DIR   Create + K x Save(N entries of S bytes)
//   walbench readall DIR                              OpenForRead + ReadAll
//   walbench concurrent -threads T -saves K -size S DIR   T goroutines saving 1 entry each
// Output: one JSON object {"ns": elapsed, "entries": n}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"go.etcd.io/etcd/raft/raftpb"
	"go.etcd.io/etcd/wal"
	"go.etcd.io/etcd/wal/walpb"
	"go.uber.org/zap"
)

func die(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		die(fmt.Errorf("usage: walbench append|readall|concurrent ... DIR"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Int("entries", 1, "entries per save")
	size := fs.Int("size", 100, "bytes per entry")
	saves := fs.Int("saves", 100, "number of saves")
	threads := fs.Int("threads", 8, "concurrent savers")
	fs.Parse(os.Args[2:])
	dir := fs.Arg(0)
	lg := zap.NewNop()
	data := make([]byte, *size)
	for i := range data {
		data[i] = byte(i)
	}
	switch os.Args[1] {
	case "append":
		w, err := wal.Create(lg, dir, []byte("bench"))
		if err != nil {
			die(err)
		}
		idx := uint64(0)
		start := time.Now()
		for s := 0; s < *saves; s++ {
			ents := make([]raftpb.Entry, *n)
			for k := range ents {
				idx++
				ents[k] = raftpb.Entry{Term: 1, Index: idx, Data: data}
			}
			if err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: idx}, ents); err != nil {
				die(err)
			}
		}
		el := time.Since(start)
		w.Close()
		json.NewEncoder(os.Stdout).Encode(map[string]int64{"ns": el.Nanoseconds(), "entries": int64(idx)})
	case "readall":
		start := time.Now()
		w, err := wal.OpenForRead(lg, dir, walpb.Snapshot{})
		if err != nil {
			die(err)
		}
		_, _, ents, err := w.ReadAll()
		if err != nil {
			die(err)
		}
		el := time.Since(start)
		json.NewEncoder(os.Stdout).Encode(map[string]int64{"ns": el.Nanoseconds(), "entries": int64(len(ents))})
	case "concurrent":
		// etcd's WAL serialises Save with a mutex: each save pays its own fsync.
		w, err := wal.Create(lg, dir, []byte("bench"))
		if err != nil {
			die(err)
		}
		var mu sync.Mutex
		idx := uint64(0)
		var wg sync.WaitGroup
		start := time.Now()
		for t := 0; t < *threads; t++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := 0; s < *saves; s++ {
					mu.Lock()
					idx++
					e := []raftpb.Entry{{Term: 1, Index: idx, Data: data}}
					err := w.Save(raftpb.HardState{Term: 1, Vote: 1, Commit: idx}, e)
					mu.Unlock()
					if err != nil {
						die(err)
					}
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		w.Close()
		json.NewEncoder(os.Stdout).Encode(map[string]int64{"ns": el.Nanoseconds(), "entries": int64(idx)})
	default:
		die(fmt.Errorf("unknown subcommand %q", os.Args[1]))
	}
}

// Package atomicfile writes files that appear whole or not at all: the one
// atomic writer of the module (batch job parts and manifest, prediction
// logs, drift profiles and reports, test fixtures of a model repository).
//
// A file is written under a hidden temporary name in the directory of its
// final path (".NAME.RANDOM.tmp", so a directory listing or a glob on the
// final names never sees it), and Commit moves it into place: fsync the
// file, rename (atomic on POSIX file systems), fsync the directory, so the
// rename itself survives a power loss. A reader, or a process restarted
// after kill -9, sees the old file or the new one, never half of one.
// CommitAll does it for several files at once, with their syncs in
// parallel and one sync of each directory (a group commit).
//
// What a crash leaves is a temporary file, and what it is worth depends on
// the writer: a batch job redoes its part, so it clears them (RemoveTemp);
// a prediction log holds records nobody can produce again, so it commits
// what they hold (Temps, CommitTemp).
package atomicfile

// Package repofs is the only way renderers read a repository checkout: a
// read-only view of an fs.FS confined to the checkout, with budgets on files
// and bytes, and the resolver for paths that one file of the repository
// uses to name another.
//
// Invariants:
//
//   - Resolve turns a reference written in a repository file into a clean,
//     slash-separated path relative to the repository root, or refuses it:
//     absolute paths, remote URLs (anything with a scheme, scp-like
//     user@host:path, go-getter "git::" forms), NUL bytes, text that is not UTF-8 and ".." that
//     climbs above the root are errors naming the reference.
//   - FS never reads outside its fs.FS. Given an os.Root-backed fs.FS (see
//     os.Root.FS), symbolic links are followed only while they stay inside
//     the root; a link that leaves it, or a link loop, fails with
//     ErrOutside or ErrSymlinkLoop naming the file.
//   - FS counts every file read and directory listed against Limits.MaxFiles
//     and every byte read against Limits.MaxBytes, checking sizes before
//     reading so that an oversized file costs no memory. Counters are safe
//     for concurrent use.
package repofs

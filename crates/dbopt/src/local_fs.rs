//! Whether a directory is on a local file system: spill and temporary files must be, since a
//! network file system turns every spill into network traffic and can lose them on a hiccup.

use std::path::Path;

/// The network file systems `statfs` can name, by their magic number (linux/magic.h).
const NETWORK_FILE_SYSTEMS: [(i64, &str); 10] = [
    (0x6969, "nfs"),
    (0x517B, "smb"),
    (0xFF53_4D42, "cifs"),
    (0xFE53_4D42, "smb2"),
    (0x00C3_6400, "ceph"),
    (0x5346_414F, "afs"),
    (0x7375_7245, "coda"),
    (0x0102_1997, "9p"),
    (0x0116_1970, "gfs2"),
    (0x0BD0_0BD0, "lustre"),
];

/// The network file system whose magic number is `magic`, if it is one.
pub fn network_fs_name(magic: i64) -> Option<&'static str> {
    NETWORK_FILE_SYSTEMS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// The network file system `dir` (or its nearest existing ancestor) is on, if any; None when
/// it is local or cannot be asked.
pub fn network_fs_of(dir: &Path) -> Option<&'static str> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statfs(existing).ok()?;
    #[allow(clippy::cast_lossless, clippy::unnecessary_cast)]
    network_fs_name(stat.f_type as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_network_file_systems_and_not_local_ones() {
        assert_eq!(network_fs_name(0x6969), Some("nfs"));
        assert_eq!(network_fs_name(0xFF53_4D42), Some("cifs"));
        assert_eq!(network_fs_name(0xEF53), None, "ext4");
        assert_eq!(network_fs_name(0x0102_1994), None, "tmpfs");
        assert_eq!(network_fs_of(&std::env::temp_dir()), None);
    }
}

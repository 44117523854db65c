//! The Debian packages that carry the corpus' German text: downloaded with `apt-get download`
//! (nothing is installed) and unpacked with `dpkg-deb | tar`, keeping only German catalogs and
//! the Ding dictionary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::run_command;
use crate::error::DataError;

/// Tier 1: small UI/help catalogs and the Ding dictionary (~80 MB of packages).
pub const TIER1: &[&str] = &[
    "trans-de-en",
    "libreoffice-l10n-de",
    "gcc-12-locales",
    "gnucash-common",
    "vlc-l10n",
    "wordpress-l10n",
    "evolution-common",
    "cinnamon-l10n",
    "krita-l10n",
    "kdevelop-l10n",
    "libvirt-l10n",
    "e2fsprogs-l10n",
    "freeciv-data",
    "gimp-data",
    "inkscape",
];
/// Tier 2: the narrative text of 16 Wesnoth campaigns (~130 MB).
pub const TIER2: &[&str] = &[
    "wesnoth-1.16-did",
    "wesnoth-1.16-dm",
    "wesnoth-1.16-dw",
    "wesnoth-1.16-ei",
    "wesnoth-1.16-httt",
    "wesnoth-1.16-l",
    "wesnoth-1.16-low",
    "wesnoth-1.16-nr",
    "wesnoth-1.16-sof",
    "wesnoth-1.16-sota",
    "wesnoth-1.16-sotbe",
    "wesnoth-1.16-thot",
    "wesnoth-1.16-trow",
    "wesnoth-1.16-tsg",
    "wesnoth-1.16-ttb",
    "wesnoth-1.16-utbs",
];
/// Tier 3: large game and 3D data packages (~700 MB).
pub const TIER3: &[&str] = &[
    "wesnoth-1.16-data",
    "widelands-data",
    "warzone2100-data",
    "blender-data",
];

/// Members of a package that the corpus reads.
const WANTED: &[&str] = &["*/de/LC_MESSAGES/*.mo", "*de_DE.mo", "./usr/share/trans/*"];

/// The packages of the given tiers (1, 2, 3).
pub fn packages(tiers: &[u8]) -> Result<Vec<&'static str>, DataError> {
    let mut out = Vec::new();
    for t in tiers {
        out.extend_from_slice(match t {
            1 => TIER1,
            2 => TIER2,
            3 => TIER3,
            t => {
                return Err(DataError::Invalid(format!(
                    "no package tier {t} (1, 2 or 3)"
                )))
            }
        });
    }
    Ok(out)
}

/// Downloads the `.deb` of every package not yet in `dir`; returns all their paths.
pub fn download(packages: &[&str], dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| find_deb(dir, p).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!("corpus: downloading {} Debian packages", missing.len());
        run_command(
            Command::new("apt-get")
                .arg("download")
                .args(&missing)
                .current_dir(dir),
        )
        .map_err(|e| match e {
            DataError::Command { program, reason } => DataError::Command {
                program,
                reason: format!("{reason} (run `apt-get update` first?)"),
            },
            e => e,
        })?;
    }
    packages
        .iter()
        .map(|p| {
            find_deb(dir, p).ok_or_else(|| DataError::Command {
                program: "apt-get download".into(),
                reason: format!("no .deb for {p} in {}", dir.display()),
            })
        })
        .collect()
}

/// The downloaded `.deb` of `package` (files are named `<package>_<version>_<arch>.deb`).
fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Extracts the wanted members of each package into `root`, once: a stamp file per package
/// records a finished extraction, so an interrupted run redoes only the unfinished one.
pub fn unpack(debs: &[PathBuf], root: &Path) -> Result<(), DataError> {
    let stamps = root.join(".unpacked");
    std::fs::create_dir_all(&stamps).map_err(|e| DataError::io(&stamps, e))?;
    for deb in debs {
        let stamp = stamps.join(deb.file_name().expect("a .deb has a file name"));
        if stamp.exists() {
            continue;
        }
        let cmd_err = |program: &str, e: std::io::Error| DataError::Command {
            program: program.into(),
            reason: e.to_string(),
        };
        let mut dpkg = Command::new("dpkg-deb")
            .arg("--fsys-tarfile")
            .arg(deb)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| cmd_err("dpkg-deb", e))?;
        let tar_in = dpkg.stdout.take().expect("piped stdout");
        // tar exits non-zero when a pattern matches nothing, which is normal here.
        Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(root)
            .arg("--wildcards")
            .args(WANTED)
            .stdin(tar_in)
            .stderr(Stdio::null())
            .status()
            .map_err(|e| cmd_err("tar", e))?;
        let status = dpkg.wait().map_err(|e| cmd_err("dpkg-deb", e))?;
        if !status.success() {
            return Err(DataError::Command {
                program: "dpkg-deb".into(),
                reason: format!("{}: {status}", deb.display()),
            });
        }
        std::fs::write(&stamp, b"").map_err(|e| DataError::io(&stamp, e))?;
    }
    Ok(())
}

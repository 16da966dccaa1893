//! Where `import "name"` finds `name.rhai`: the importing script's folder (the
//! current folder for REPL input), then the stdlib, then each folder of
//! $MINIMA_PATH (colon-separated). The first file found wins; when none is, the
//! error lists every path tried.

use rhai::module_resolvers::ModuleResolver;
use rhai::{Engine, EvalAltResult, Module, Position, Scope, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// $MINIMA_STDLIB, else the stdlib/ folder of the source tree this binary was
/// built from.
pub fn stdlib_dir() -> PathBuf {
    std::env::var_os("MINIMA_STDLIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("stdlib"))
}

/// The folders searched, in order, for a module imported by the file `importer`
/// (None: REPL input, searched from the current folder).
pub fn search_dirs(importer: Option<&Path>) -> Vec<PathBuf> {
    let own = importer
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let own = if own.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        own
    };
    let mut dirs = vec![own, stdlib_dir()];
    if let Some(path) = std::env::var_os("MINIMA_PATH") {
        dirs.extend(std::env::split_paths(&path).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

/// The file `import "name"` in `importer` reads, or every path tried.
pub fn locate(name: &str, importer: Option<&Path>) -> Result<PathBuf, Vec<PathBuf>> {
    let file = format!("{name}.rhai");
    if Path::new(name).is_absolute() {
        let path = PathBuf::from(file);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(vec![path])
        };
    }
    let tried: Vec<PathBuf> = search_dirs(importer)
        .into_iter()
        .map(|d| d.join(&file))
        .collect();
    match tried.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(tried),
    }
}

/// The message for a module that is nowhere.
pub fn not_found(name: &str, tried: &[PathBuf]) -> String {
    let places: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    format!(
        "module \"{name}\" not found; looked for {} (more folders: MINIMA_PATH, colon-separated)",
        places.join(", ")
    )
}

/// The engine's resolver. A module's source is its file's path, so errors inside
/// it point at that file and its own imports resolve from its folder. Modules are
/// kept until their file changes, so an import in a loop reads the file once.
#[derive(Default)]
pub struct SearchPath {
    cache: RefCell<HashMap<PathBuf, Loaded>>,
}

/// A module with its file's modification time when it was read.
type Loaded = (Option<SystemTime>, Shared<Module>);

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ModuleResolver for SearchPath {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        name: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let path = locate(name, source.map(Path::new))
            .map_err(|tried| EvalAltResult::ErrorRuntime(not_found(name, &tried).into(), pos))?;
        let stamp = modified(&path);
        if let Some((when, module)) = self.cache.borrow().get(&path) {
            if *when == stamp {
                return Ok(module.clone());
            }
        }
        // Named by its file, so an error report can show the module's own lines.
        let source = path.display().to_string();
        let in_module = |e| Box::new(EvalAltResult::ErrorInModule(source.clone(), e, pos));
        let mut ast = engine.compile_file(path.clone()).map_err(in_module)?;
        ast.set_source(source.clone());
        let module: Shared<Module> = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(in_module)?
            .into();
        self.cache
            .borrow_mut()
            .insert(path, (stamp, module.clone()));
        Ok(module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_importers_folder_comes_first_and_misses_list_every_place() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("main.rhai");
        std::fs::write(dir.path().join("paper.rhai"), "fn own() { 1 }").unwrap();
        // A module beside the script shadows a stdlib module of the same name.
        assert_eq!(
            locate("paper", Some(&script)),
            Ok(dir.path().join("paper.rhai"))
        );
        assert_eq!(
            locate("paper", Some(Path::new("elsewhere/x.rhai"))),
            Ok(stdlib_dir().join("paper.rhai"))
        );
        let tried = locate("nolib", Some(&script)).unwrap_err();
        assert_eq!(
            tried[..2],
            [
                dir.path().join("nolib.rhai"),
                stdlib_dir().join("nolib.rhai")
            ]
        );
        let message = not_found("nolib", &tried);
        assert!(
            message.contains(&dir.path().join("nolib.rhai").display().to_string()),
            "{message}"
        );
        assert!(message.contains("MINIMA_PATH"), "{message}");
        // REPL input (no file) searches the current folder.
        assert_eq!(search_dirs(None)[0], PathBuf::from("."));
        assert_eq!(
            search_dirs(Some(Path::new("x.rhai")))[0],
            PathBuf::from(".")
        );
    }
}

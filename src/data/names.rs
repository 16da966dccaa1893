//! The data sets `dataset(NAME)` reads: the one list that the loader, the script
//! binding, `minima data fetch` and the default folders name them by.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Cifar10,
    Cifar100,
    Cinic10,
    RestrictedImagenet,
    FashionMnist,
}

impl Name {
    /// In the order messages list them.
    pub const ALL: [Name; 5] = [
        Name::Cifar10,
        Name::Cifar100,
        Name::Cinic10,
        Name::RestrictedImagenet,
        Name::FashionMnist,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Name::Cifar10 => "cifar10",
            Name::Cifar100 => "cifar100",
            Name::Cinic10 => "cinic10",
            Name::RestrictedImagenet => "restricted_imagenet",
            Name::FashionMnist => "fashion_mnist",
        }
    }

    /// The data set called `text`, or an error listing the known names (with the
    /// nearest as a suggestion).
    pub fn parse(text: &str) -> Result<Name, String> {
        if let Some(name) = Name::ALL.into_iter().find(|n| n.as_str() == text) {
            return Ok(name);
        }
        let names = Name::ALL.map(Name::as_str);
        let hint = crate::kit::config::closest(text, names.iter().copied())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        Err(format!(
            "unknown data set `{text}`{hint}; known: {} (the Figure 1 toy is `toy()`)",
            names.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_a_typo_gets_a_suggestion() {
        for n in Name::ALL {
            assert_eq!(Name::parse(n.as_str()), Ok(n));
        }
        let e = Name::parse("cifar1O").unwrap_err();
        assert!(e.contains("did you mean `cifar10`?"), "{e}");
        assert!(e.contains("known: cifar10, cifar100, cinic10"), "{e}");
    }
}

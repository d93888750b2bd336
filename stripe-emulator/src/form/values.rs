//! The typed getters of [`Params`]: a parameter as a string, number, boolean, list or hash,
//! with Stripe's 400 for a value of the wrong shape.

use super::*;

impl Params {
    /// A string parameter; a hash where a string belongs is a 400.
    pub fn string(&self, path: &[&str]) -> ApiResult<Option<&str>> {
        match self.get(path) {
            None => Ok(None),
            Some(Param::Str(s)) => Ok(Some(s)),
            Some(Param::Map(_)) => {
                let name = param_name(path);
                Err(ApiError::invalid_param(
                    &name,
                    format!("Invalid string: {name} must be a string, not a hash"),
                ))
            }
        }
    }

    /// A required, non-empty string parameter (`parameter_missing` otherwise).
    pub fn required_string(&self, path: &[&str]) -> ApiResult<&str> {
        match self.string(path)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::parameter_missing(&param_name(path))),
        }
    }

    /// A nullable string as update endpoints read it: absent → `None` (leave unchanged),
    /// empty → `Some(None)` (unset), otherwise `Some(Some(value))`.
    pub fn nullable_string(&self, path: &[&str]) -> ApiResult<Option<Option<&str>>> {
        Ok(self
            .string(path)?
            .map(|s| if s.is_empty() { None } else { Some(s) }))
    }

    /// An integer parameter (`parameter_invalid_integer` when it does not parse).
    pub fn integer(&self, path: &[&str]) -> ApiResult<Option<i64>> {
        let name = param_name(path);
        match self.string(path)? {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid_integer(&name, s)),
        }
    }

    /// A string parameter that counts only when non-empty (`x=` reads as absent).
    pub fn non_empty(&self, path: &[&str]) -> ApiResult<Option<&str>> {
        Ok(self.string(path)?.filter(|s| !s.is_empty()))
    }

    /// True when a top-level parameter other than `names` was sent.
    pub fn params_other_than(&self, names: &[&str]) -> bool {
        self.root.keys().any(|k| !names.contains(&k.as_str()))
    }

    /// A decimal number parameter such as `percent_off=25.5` (`parameter_invalid_decimal`
    /// when it does not parse).
    pub fn float(&self, path: &[&str]) -> ApiResult<Option<f64>> {
        let name = param_name(path);
        match self.non_empty(path)? {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid_request(format!("Invalid decimal: {s}"))
                        .with_code("parameter_invalid_decimal")
                        .with_param(&name)
                }),
        }
    }

    /// The elements of an array-of-hashes parameter such as `items[0][price]=..`, with
    /// their index as sent (`items[3]` stays 3). Absent → empty; a scalar → 400.
    pub fn indexed(&self, path: &[&str]) -> ApiResult<Vec<String>> {
        let name = param_name(path);
        match self.get(path) {
            None => Ok(Vec::new()),
            Some(Param::Str(s)) if s.is_empty() => Ok(Vec::new()),
            Some(Param::Str(_)) => Err(ApiError::invalid_param(
                &name,
                format!("Invalid array: {name} must be an array"),
            )),
            Some(Param::Map(map)) => {
                let mut keys = Vec::with_capacity(map.len());
                for key in map.keys() {
                    let index = key.parse::<usize>().map_err(|_| {
                        ApiError::invalid_param(
                            &name,
                            format!("Invalid array: {name} must be an array"),
                        )
                    })?;
                    keys.push((index, key.clone()));
                }
                keys.sort();
                Ok(keys.into_iter().map(|(_, key)| key).collect())
            }
        }
    }

    /// A boolean parameter: `true` or `false`.
    pub fn boolean(&self, path: &[&str]) -> ApiResult<Option<bool>> {
        let name = param_name(path);
        match self.string(path)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid_param(
                &name,
                format!("Invalid boolean: {other}"),
            )),
        }
    }

    /// An array of strings (`expand[0]=a&expand[1]=b`); absent → empty.
    pub fn string_list(&self, path: &[&str]) -> ApiResult<Vec<String>> {
        let name = param_name(path);
        let Some(node) = self.get(path) else {
            return Ok(Vec::new());
        };
        let items = node.as_list().ok_or_else(|| {
            ApiError::invalid_param(&name, format!("Invalid array: {name} must be an array"))
        })?;
        items
            .into_iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid_param(
                        &name,
                        format!("Invalid string: {name} must contain strings"),
                    )
                })
            })
            .collect()
    }

    /// A hash of strings such as `metadata`.
    pub fn hash(&self, path: &[&str]) -> ApiResult<Option<HashArg>> {
        let name = param_name(path);
        match self.get(path) {
            None => Ok(None),
            Some(Param::Str(s)) if s.is_empty() => Ok(Some(HashArg::Clear)),
            Some(Param::Str(_)) => Err(ApiError::invalid_param(&name, "Invalid hash")),
            Some(Param::Map(map)) => {
                let mut entries = BTreeMap::new();
                for (key, value) in map {
                    match value {
                        Param::Str(s) => {
                            entries.insert(key.clone(), s.clone());
                        }
                        Param::Map(_) => {
                            return Err(ApiError::invalid_param(
                                &format!("{name}[{key}]"),
                                format!(
                                    "Invalid string: {name}[{key}] must be a string, not a hash"
                                ),
                            ));
                        }
                    }
                }
                Ok(Some(HashArg::Entries(entries)))
            }
        }
    }

    /// The `expand[]` list.
    pub fn expand(&self) -> ApiResult<Vec<String>> {
        self.string_list(&["expand"])
    }
}

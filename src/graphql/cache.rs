//! Documents seen before: a request whose text matches one parsed, vetted and validated earlier
//! skips all three and runs a copy of that parsed document. A frontend sends the same few
//! documents over and over (the `session` query on every page load), and parsing and validating
//! them cost more than running them.
//!
//! Bounded both ways: at most [`CAPACITY`] entries of at most [`MAX_TEXT_BYTES`] each, so a
//! client sending endless unique documents cannot grow it. Eviction is CLOCK (second chance): a
//! new document replaces only an entry no request has used since the hand last passed, so a
//! stream of documents each seen once evicts its own kind, never the documents in steady use.
//!
//! What is cached is what depends on the text alone: the parsed document, that it passed
//! [`super::document::vet`], and async-graphql's validation result — the latter only for the
//! operation name it was computed for and only for requests without variables, as validation
//! checks variable values against their declared types. Keys are the exact text (a hash picks
//! the slot, the text decides), so no crafted collision can run another document.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ValidationResult};

/// Documents kept.
pub const CAPACITY: usize = 512;
/// Longest document text cached (longer ones are vetted on every request).
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// The cache; shared by every request of a schema.
pub struct DocumentCache {
    hasher: RandomState,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    /// Text hash → entry index (a collision only costs a miss).
    index: HashMap<u64, usize>,
    entries: Vec<Entry>,
    hand: usize,
}

struct Entry {
    hash: u64,
    text: Arc<str>,
    document: Arc<ExecutableDocument>,
    /// async-graphql's validation of the operation named (`None`: the only one), without
    /// variables.
    validation: Option<(Option<String>, ValidationResult)>,
    used: bool,
}

/// A request's document came from the cache already validated: async-graphql's validation of
/// it is skipped (request data, read by the `validation` hook of [`super::errors`]).
pub struct Validated(pub ValidationResult);

/// Where to record a validation result for a cached document (request data).
pub struct Pending {
    cache: Arc<DocumentCache>,
    hash: u64,
    text: Arc<str>,
    operation: Option<String>,
}

impl Pending {
    /// Records async-graphql's verdict on the document, for later requests.
    pub fn record(&self, result: &ValidationResult) {
        let mut slots = self.cache.lock();
        if let Some(entry) = slots.find(self.hash, &self.text) {
            entry.validation = Some((self.operation.clone(), *result));
        }
    }
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            slots: Mutex::default(),
        }
    }
}

/// What the cache knew of a request's document.
pub enum Lookup {
    /// Parsed and vetted before: the request now holds a copy of the parsed document.
    Hit,
    /// Unknown (or not cacheable): vet it, then [`DocumentCache::insert`].
    Miss,
}

impl DocumentCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The slots hold no invariant a panicking holder could break half-way.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hash(&self, text: &str) -> u64 {
        self.hasher.hash_one(text)
    }

    /// On a hit, gives the request a copy of the parsed document and, when its validation is
    /// known for this operation and the request has no variables, marks it [`Validated`];
    /// otherwise leaves a [`Pending`] for the validation hook to fill.
    pub fn lookup(self: &Arc<Self>, request: &mut Request) -> Lookup {
        if request.query.len() > MAX_TEXT_BYTES {
            return Lookup::Miss;
        }
        let hash = self.hash(&request.query);
        let (text, document, validation) = {
            let mut slots = self.lock();
            let Some(entry) = slots.find(hash, &request.query) else {
                return Lookup::Miss;
            };
            entry.used = true;
            let validation = entry
                .validation
                .as_ref()
                .filter(|(op, _)| *op == request.operation_name)
                .map(|(_, result)| *result);
            (entry.text.clone(), entry.document.clone(), validation)
        };
        request.set_parsed_query(ExecutableDocument::clone(&document));
        match validation {
            Some(result) if request.variables.is_empty() => {
                request.data.insert(Validated(result));
            }
            _ => self.await_validation(request, hash, text),
        }
        Lookup::Hit
    }

    /// Keeps a vetted request's parsed document (the request must hold it).
    pub fn insert(self: &Arc<Self>, request: &mut Request) {
        if request.query.len() > MAX_TEXT_BYTES {
            return;
        }
        let Ok(document) = request.parsed_query() else {
            return;
        };
        let document = Arc::new(document.clone());
        let text: Arc<str> = Arc::from(request.query.as_str());
        let hash = self.hash(&text);
        {
            let mut slots = self.lock();
            if slots.find(hash, &text).is_some() {
                return;
            }
            slots.put(Entry {
                hash,
                text: text.clone(),
                document,
                validation: None,
                used: false,
            });
        }
        self.await_validation(request, hash, text);
    }

    /// Leaves a [`Pending`] in a request without variables, for the validation hook to fill.
    fn await_validation(self: &Arc<Self>, request: &mut Request, hash: u64, text: Arc<str>) {
        if request.variables.is_empty() {
            let operation = request.operation_name.clone();
            request.data.insert(Pending {
                cache: self.clone(),
                hash,
                text,
                operation,
            });
        }
    }

    /// Entries held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl Slots {
    fn find(&mut self, hash: u64, text: &str) -> Option<&mut Entry> {
        let i = *self.index.get(&hash)?;
        self.entries.get_mut(i).filter(|e| &*e.text == text)
    }

    fn put(&mut self, entry: Entry) {
        if self.entries.len() < CAPACITY {
            self.index.insert(entry.hash, self.entries.len());
            self.entries.push(entry);
            return;
        }
        // CLOCK: clear `used` bits until an unused entry comes under the hand.
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.entries.len();
            let victim = &mut self.entries[i];
            if victim.used {
                victim.used = false;
                continue;
            }
            let old = victim.hash;
            if self.index.get(&old) == Some(&i) {
                self.index.remove(&old);
            }
            self.index.insert(entry.hash, i);
            self.entries[i] = entry;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vetted(cache: &Arc<DocumentCache>, text: &str) -> Lookup {
        let mut request = Request::new(text);
        match cache.lookup(&mut request) {
            Lookup::Hit => Lookup::Hit,
            Lookup::Miss => {
                cache.insert(&mut request);
                Lookup::Miss
            }
        }
    }

    #[test]
    fn a_flood_of_unique_documents_neither_grows_the_cache_nor_evicts_the_ones_in_use() {
        let cache = Arc::new(DocumentCache::default());
        let popular = "{ session { user { id } } }";
        assert!(matches!(vetted(&cache, popular), Lookup::Miss));
        for i in 0..CAPACITY * 4 {
            // The popular document is used between every few hostile ones.
            if i % 8 == 0 {
                assert!(
                    matches!(vetted(&cache, popular), Lookup::Hit),
                    "evicted at {i}"
                );
            }
            vetted(&cache, &format!("{{ me {{ id a{i}: name }} }}"));
            assert!(cache.len() <= CAPACITY);
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(matches!(vetted(&cache, popular), Lookup::Hit));
    }

    #[test]
    fn long_documents_are_not_kept_and_a_hit_needs_the_same_text() {
        let cache = Arc::new(DocumentCache::default());
        let long = format!("{{ me {{ id }} }} #{}", "x".repeat(MAX_TEXT_BYTES));
        vetted(&cache, &long);
        assert_eq!(cache.len(), 0);
        vetted(&cache, "{ me { id } }");
        assert!(matches!(vetted(&cache, "{ me { id  } }"), Lookup::Miss));
        assert!(matches!(vetted(&cache, "{ me { id } }"), Lookup::Hit));
    }

    #[test]
    fn validation_is_reused_only_for_the_same_operation_without_variables() {
        let cache = Arc::new(DocumentCache::default());
        let text = "query A { me { id } } query B { me { email } }";
        let mut first = Request::new(text).operation_name("A");
        assert!(matches!(cache.lookup(&mut first), Lookup::Miss));
        cache.insert(&mut first);
        let result = ValidationResult {
            cache_control: Default::default(),
            complexity: 2,
            depth: 2,
        };
        first
            .data
            .get(&std::any::TypeId::of::<Pending>())
            .and_then(|p| p.downcast_ref::<Pending>())
            .expect("pending")
            .record(&result);
        let validated = |request: &Request| {
            request
                .data
                .contains_key(&std::any::TypeId::of::<Validated>())
        };
        let mut again = Request::new(text).operation_name("A");
        assert!(matches!(cache.lookup(&mut again), Lookup::Hit));
        assert!(validated(&again));
        let mut other = Request::new(text).operation_name("B");
        assert!(matches!(cache.lookup(&mut other), Lookup::Hit));
        assert!(!validated(&other));
        let mut with_variables =
            Request::new(text)
                .operation_name("A")
                .variables(async_graphql::Variables::from_json(
                    serde_json::json!({"x": 1}),
                ));
        assert!(matches!(cache.lookup(&mut with_variables), Lookup::Hit));
        assert!(!validated(&with_variables));
    }
}

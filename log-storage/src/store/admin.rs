//! The namespace changes of a store, each crash-safe (see the module docs
//! of `store/` for the protocol): [`Store::create_topic`] (built in a
//! staging directory, renamed into place), [`Store::delete_topic`] (renamed
//! away, then removed), [`Store::create_partitions`] and
//! [`Store::alter_topic_config`] (the config
//! replaced atomically). They are serialised with each other and with
//! offset commits by the store's admin lock.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::topic_config::{TopicConfig, TopicInfo, TopicMeta, check_partitions, encode_config};
use super::{Store, Topic};
use crate::error::{Error, io_error};
use crate::io::durable::{remove_tree, write_atomic};
use crate::layout;
use crate::util::{lock, nonce, read, write};

impl Store {
    /// Creates a topic of `partitions` partitions (1 to
    /// [`MAX_PARTITIONS`](crate::MAX_PARTITIONS)), durably: once this returns the topic survives
    /// a crash, and a crash before leaves no trace of it.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicInfo, Error> {
        self.check_open()?;
        let dir = layout::topic_dir(&self.dir, name)?;
        check_partitions(partitions)?;
        config.validate()?;
        let _admin = write(&self.admin);
        self.check_open()?;
        if read(&self.topics).contains_key(name)
            || self
                .fs
                .exists(&dir)
                .map_err(io_error("check topic directory", &dir))?
        {
            return Err(Error::TopicExists {
                topic: name.to_owned(),
            });
        }
        let meta = TopicMeta {
            id: nonce(),
            partitions,
            config,
        };
        let staging = self.topics_dir.join(layout::staging_name(name, nonce()));
        if let Err(err) = self.build_topic(&staging, &dir, &meta) {
            if let Err(undo) = self.undo_create(&staging, &dir, name) {
                tracing::error!(topic = name, error = %undo, "cannot undo a failed topic creation; the topic may reappear at the next open");
            }
            return Err(err);
        }
        let topic = Topic::new(name.to_owned(), dir, meta);
        let info = topic.info();
        write(&self.topics).insert(name.to_owned(), Arc::new(topic));
        tracing::info!(topic = name, partitions, "topic created");
        Ok(info)
    }

    /// Writes the staging directory with its config, renames it into place
    /// and makes that durable.
    fn build_topic(&self, staging: &Path, dir: &Path, meta: &TopicMeta) -> Result<(), Error> {
        self.fs
            .create_dir_all(staging)
            .map_err(io_error("create topic staging directory", staging))?;
        let path = layout::topic_config_path(staging);
        let file = self
            .fs
            .create_new(&path)
            .map_err(io_error("create topic config", &path))?;
        file.write_all_at(&encode_config(meta), 0)
            .map_err(io_error("write topic config", &path))?;
        file.sync_data()
            .map_err(io_error("sync topic config", &path))?;
        self.fs
            .sync_dir(staging)
            .map_err(io_error("sync topic staging directory", staging))?;
        self.fs
            .rename(staging, dir)
            .map_err(io_error("rename topic into place", dir))?;
        self.fs
            .sync_dir(&self.topics_dir)
            .map_err(io_error("sync topics directory", &self.topics_dir))
    }

    /// Undoes a failed [`Store::create_topic`]: the staging directory is
    /// removed, and a topic directory already renamed into place is renamed
    /// away first (never emptied in place, which a crash could leave as a
    /// topic without its config).
    fn undo_create(&self, staging: &Path, dir: &Path, name: &str) -> Result<(), Error> {
        let doomed = self.topics_dir.join(layout::doomed_name(name, nonce()));
        if self
            .fs
            .exists(dir)
            .map_err(io_error("check topic directory", dir))?
        {
            self.fs
                .rename(dir, &doomed)
                .map_err(io_error("rename topic directory for deletion", dir))?;
        }
        remove_tree(&*self.fs, &doomed)?;
        remove_tree(&*self.fs, staging)?;
        self.fs
            .sync_dir(&self.topics_dir)
            .map_err(io_error("sync topics directory", &self.topics_dir))
    }

    /// Deletes a topic: closes its open partitions (handles given out fail
    /// with [`Error::Closed`] from then on, and keep reading what they
    /// read), makes the deletion durable, then removes its files and its
    /// committed offsets. A crash at any point leaves the whole topic or
    /// none of it. If this fails before the deletion is visible, the topic
    /// stays, but handles given out before are closed: get new ones from
    /// [`Store::partition`].
    ///
    /// Once the deletion is durable this returns `Ok` even if removing the
    /// files fails (that is logged; the next open removes them).
    pub fn delete_topic(&self, name: &str) -> Result<(), Error> {
        self.check_open()?;
        layout::validate_topic_name(name)?;
        let _admin = write(&self.admin);
        self.check_open()?;
        let Some(topic) = write(&self.topics).remove(name) else {
            return Err(Error::TopicNotFound {
                topic: name.to_owned(),
            });
        };
        topic.deleted.store(true, Ordering::SeqCst);
        for slot in read(&topic.slots).iter() {
            let log = lock(slot).take();
            if let Some(log) = log
                && let Err(err) = log.close()
            {
                tracing::warn!(partition = %log.dir().display(), error = %err, "closing a partition of a deleted topic failed");
            }
        }
        let doomed = self.topics_dir.join(layout::doomed_name(name, nonce()));
        if let Err(err) = self.fs.rename(&topic.dir, &doomed) {
            // Nothing changed on disk: the topic stays, its partitions reopen
            // on next use.
            topic.deleted.store(false, Ordering::SeqCst);
            write(&self.topics).insert(name.to_owned(), topic.clone());
            return Err(io_error("rename topic directory for deletion", &topic.dir)(
                err,
            ));
        }
        // Until this sync the rename may not be durable: a crash brings the
        // whole topic back (closed cleanly). Removing files before it could
        // leave half a topic, so on failure leave the doomed directory to
        // the next open.
        self.fs
            .sync_dir(&self.topics_dir)
            .map_err(io_error("sync topics directory", &self.topics_dir))?;
        tracing::info!(topic = name, "topic deleted");
        let cleanup = remove_tree(&*self.fs, &doomed)
            .and_then(|()| {
                self.fs
                    .sync_dir(&self.topics_dir)
                    .map_err(io_error("sync topics directory", &self.topics_dir))
            })
            .and_then(|()| self.offsets.remove_topic(name));
        if let Err(err) = cleanup {
            tracing::error!(topic = name, error = %err, "cannot remove the files of a deleted topic; the next open will");
        }
        Ok(())
    }

    /// Replaces a topic's config with `config` (Kafka's AlterConfigs; an
    /// incremental change is the caller's read, modify, write under its
    /// own serialisation): validated, durable on return, and applied to
    /// every open partition at once (appends, rolls, retention and the
    /// cleaner use it from their next step). A config equal to the
    /// current one changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] (nothing changes), [`Error::TopicNotFound`],
    /// I/O errors writing `topic.config` (the old config stays).
    pub fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<TopicInfo, Error> {
        self.check_open()?;
        layout::validate_topic_name(name)?;
        config.validate()?;
        let _admin = write(&self.admin);
        self.check_open()?;
        let topic = self.topic_entry(name)?;
        {
            let mut meta = write(&topic.meta);
            if meta.config == config {
                drop(meta);
                return Ok(topic.info());
            }
            let altered = TopicMeta {
                config: config.clone(),
                ..meta.clone()
            };
            let path = layout::topic_config_path(&topic.dir);
            write_atomic(&*self.fs, &path, &encode_config(&altered))?;
            *meta = altered;
        }
        // A partition opening now reads the new meta under its slot lock;
        // one opened before is reached here, under the same lock.
        let partition_config = self.partition_config(&config);
        let slots: Vec<_> = read(&topic.slots).clone();
        for slot in slots {
            if let Some(log) = &*lock(&slot) {
                log.set_config(partition_config.clone())?;
            }
        }
        tracing::info!(topic = name, "topic config altered");
        Ok(topic.info())
    }

    /// Grows a topic to `new_total` partitions (at most
    /// [`MAX_PARTITIONS`](crate::MAX_PARTITIONS)); asking for the current count changes nothing,
    /// asking for fewer fails with [`Error::InvalidConfig`]. Durable on
    /// return.
    pub fn create_partitions(&self, name: &str, new_total: u32) -> Result<TopicInfo, Error> {
        self.check_open()?;
        layout::validate_topic_name(name)?;
        check_partitions(new_total)?;
        let _admin = write(&self.admin);
        self.check_open()?;
        let topic = self.topic_entry(name)?;
        let mut meta = write(&topic.meta);
        if new_total < meta.partitions {
            return Err(Error::InvalidConfig {
                setting: "partitions",
                reason: format!(
                    "topic {name:?} has {} partitions; partitions can only be added",
                    meta.partitions
                ),
            });
        }
        if new_total > meta.partitions {
            let grown = TopicMeta {
                partitions: new_total,
                ..meta.clone()
            };
            let path = layout::topic_config_path(&topic.dir);
            write_atomic(&*self.fs, &path, &encode_config(&grown))?;
            *meta = grown;
            write(&topic.slots).resize_with(new_total as usize, Default::default);
            tracing::info!(topic = name, partitions = new_total, "partitions added");
        }
        drop(meta);
        Ok(topic.info())
    }
}

//! File system commands (at-contract §7; u-blox AT manual ch. 22).
//!
//! Error mapping: an invalid name is `+CME ERROR: 1638` (FFS invalid filename), a missing file
//! 1612 (FILE NOT FOUND), no room 1637, a payload stall 1649 (FFS TIMEOUT), a bad tag or a
//! wrong argument 4.
//!
//! `+URDFILE` and `+URDBLOCK` answers are streamed from the file as the host reads them (see
//! [`crate::Channel`]'s back-pressure): a 1 MiB file costs one chunk of memory, not a copy per
//! pipelined read. An upload's commit (its fsync and rename) runs as a job off the module lock,
//! so other channels are not held behind it.

use sealcell_at::CmeError;
use sealcell_at::args::ArgReader;
use sealcell_at::format::push_decimal;
use sealcell_at::syntax::Form;

use std::io::{Seek, SeekFrom};

use super::{
    CmdResult, Continuation, Ctx, Outcome, PayloadJob, PayloadTarget, Stream, storage_failure,
    undefined_form,
};
use crate::fs::{FsError, MAX_NAME_LEN, Tag, Upload};
use crate::job::DiskJob;

/// The largest block `AT+URDBLOCK` returns at once.
///
/// # Security
/// Bounds the response a single command can make the module build in memory.
pub const MAX_READ_BLOCK: u64 = 1 << 20;

/// A file system command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+UDWNFILE="<name>",<size>[,"<tag>"]`: write (append) via a raw payload.
    Download,
    /// `+URDFILE="<name>"[,"<tag>"]`: read a whole file.
    Read,
    /// `+URDBLOCK="<name>",<offset>,<size>`: read part of a file.
    ReadBlock,
    /// `+UDELFILE="<name>"[,"<tag>"]`: delete.
    Delete,
    /// `+ULSTFILE[=<op>[,"<name>"][,"<tag>"]]`: list, free space, file size.
    List,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+UDWNFILE" => Cmd::Download,
            "+URDFILE" => Cmd::Read,
            "+URDBLOCK" => Cmd::ReadBlock,
            "+UDELFILE" => Cmd::Delete,
            "+ULSTFILE" => Cmd::List,
            _ => return None,
        })
    }
}

/// A file-system failure's answer (through [`crate::cme_map`]).
pub(crate) fn fs_error(e: FsError) -> CmeError {
    crate::cme_map::Failure::Fs(e).into()
}

/// Reads a file name argument; longer than the limit is an invalid name, not a type error.
fn name<'a>(r: &mut ArgReader<'a>) -> Result<&'a str, CmeError> {
    match r.string(MAX_NAME_LEN * 4) {
        Ok(n) => Ok(n),
        Err(sealcell_at::args::ArgError::TooLong { .. }) => Err(CmeError::FfsInvalidFilename),
        Err(e) => Err(e.into()),
    }
}

fn tag(r: &mut ArgReader<'_>) -> Result<Tag, CmeError> {
    match r.opt_string(8)? {
        None => Ok(Tag::User),
        Some(t) => Tag::parse(t).ok_or(CmeError::OperationNotSupported),
    }
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Download, Form::Set(args)) => {
            let mut r = args.reader();
            let name = name(&mut r)?;
            let size = r.int(1..=i64::MAX)?;
            let tag = tag(&mut r)?;
            r.finish()?;
            let size = u64::try_from(size).map_err(|_| CmeError::OperationNotSupported)?;
            crate::fs::validate_name(name).map_err(fs_error)?;
            // Checking the free space (every file's size), creating the temporary file and
            // copying what an append keeps are disk work: a job, then the prompt.
            let fs = ctx.module.fs.clone();
            let name = name.to_string();
            return Ok(Outcome::Wait(DiskJob::new(move || {
                let begun = fs.begin_upload(tag, &name, size).map_err(fs_error);
                let then: Continuation = Box::new(move |_ctx: &mut Ctx<'_>| {
                    Ok(Outcome::Prompt(PayloadJob {
                        prompt: sealcell_at::format::PROMPT,
                        size,
                        timeout_error: CmeError::FfsTimeout,
                        target: Box::new(FileTarget::new(begun?)),
                    }))
                });
                Box::new(then)
            })));
        }
        (Cmd::Download, Form::Test) => {
            ctx.info(b"+UDWNFILE: \"filename\",(1-1073741824),(\"USER\",\"FOAT\")")
        }
        (Cmd::Read, Form::Set(args)) => {
            let mut r = args.reader();
            let name = name(&mut r)?;
            let tag = tag(&mut r)?;
            r.finish()?;
            let reader = ctx.module.fs.reader(tag, name).map_err(fs_error)?;
            let len = reader.len();
            return Ok(stream(ctx, b"+URDFILE: ", name, Box::new(reader), len));
        }
        (Cmd::ReadBlock, Form::Set(args)) => {
            let mut r = args.reader();
            let name = name(&mut r)?;
            let offset = r.int(0..=i64::MAX)?;
            let size = r.int(0..=MAX_READ_BLOCK as i64)?;
            r.finish()?;
            let mut reader = ctx.module.fs.reader(Tag::User, name).map_err(fs_error)?;
            let offset = (offset as u64).min(reader.len());
            let len = (size as u64).min(reader.len() - offset);
            reader
                .seek(SeekFrom::Start(offset))
                .map_err(storage_failure)?;
            return Ok(stream(ctx, b"+URDBLOCK: ", name, Box::new(reader), len));
        }
        (Cmd::Delete, Form::Set(args)) => {
            let mut r = args.reader();
            let name = name(&mut r)?;
            let tag = tag(&mut r)?;
            r.finish()?;
            crate::fs::validate_name(name).map_err(fs_error)?;
            // The unlink and the directory's fsync: a job.
            let fs = ctx.module.fs.clone();
            let name = name.to_string();
            let channel = ctx.channel.0;
            return Ok(Outcome::Wait(DiskJob::new(move || {
                let deleted = fs.delete(tag, &name).map_err(fs_error);
                let then: Continuation = Box::new(move |_ctx: &mut Ctx<'_>| {
                    deleted?;
                    tracing::debug!(channel, file = name, area = tag.as_str(), "file deleted");
                    Ok(Outcome::Done)
                });
                Box::new(then)
            })));
        }
        (Cmd::List, Form::Action) => list(ctx, Tag::User)?,
        (Cmd::List, Form::Set(args)) => {
            let mut r = args.reader();
            match r.opt_int(0..=2)?.unwrap_or(0) {
                0 => {
                    let tag = tag(&mut r)?;
                    r.finish()?;
                    list(ctx, tag)?;
                }
                1 => {
                    let _tag = tag(&mut r)?;
                    r.finish()?;
                    let free = ctx.module.fs.free().map_err(storage_failure)?;
                    ctx.info_fmt(format_args!("+ULSTFILE: {free}"));
                }
                _ => {
                    let name = name(&mut r)?;
                    let tag = tag(&mut r)?;
                    r.finish()?;
                    let size = ctx.module.fs.size(tag, name).map_err(fs_error)?;
                    ctx.info_fmt(format_args!("+ULSTFILE: {size}"));
                }
            }
        }
        (Cmd::List, Form::Test) => ctx.info(b"+ULSTFILE: (0-2)"),
        (Cmd::Read | Cmd::ReadBlock | Cmd::Delete, Form::Test) => {}
        (_, form) => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

fn list(ctx: &mut Ctx<'_>, tag: Tag) -> Result<(), CmeError> {
    let names = ctx.module.fs.list(tag).map_err(storage_failure)?;
    let mut line = b"+ULSTFILE: ".to_vec();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        line.push(b'"');
        line.extend_from_slice(n.as_bytes());
        line.push(b'"');
    }
    ctx.info(&line);
    Ok(())
}

/// Starts the answer `<prefix>"<name>",<size>,"<raw bytes>"` (the data raw, not escaped) and
/// returns the stream that copies the bytes and closes the line.
fn stream(
    ctx: &mut Ctx<'_>,
    prefix: &[u8],
    name: &str,
    reader: Box<dyn std::io::Read + Send>,
    len: u64,
) -> Outcome {
    let mut head = Vec::with_capacity(prefix.len() + name.len() + 32);
    if ctx.verbose() {
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(prefix);
    head.push(b'"');
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b"\",");
    push_decimal(&mut head, len);
    head.extend_from_slice(b",\"");
    ctx.raw(&head);
    Outcome::Stream(Stream {
        reader,
        remaining: len,
        suffix: b"\"\r\n",
        failed: false,
    })
}

/// Payload bytes kept in memory before they go to the temporary file. A write to a file can
/// stall while another channel's fsync holds the journal, and payload bytes arrive under the
/// module lock: a small upload is written only by its commit job, a large one every this many
/// bytes.
const UPLOAD_BUFFER: usize = 256 * 1024;

struct FileTarget {
    upload: Upload,
    buffered: Vec<u8>,
}

impl FileTarget {
    fn new(upload: Upload) -> FileTarget {
        FileTarget {
            upload,
            buffered: Vec::new(),
        }
    }
}

impl PayloadTarget for FileTarget {
    fn write(&mut self, bytes: &[u8]) {
        self.buffered.extend_from_slice(bytes);
        if self.buffered.len() >= UPLOAD_BUFFER {
            self.upload.write(&self.buffered);
            self.buffered.clear();
        }
    }

    fn finish(self: Box<Self>, _ctx: &mut Ctx<'_>) -> CmdResult {
        let FileTarget {
            mut upload,
            buffered,
        } = *self;
        Ok(Outcome::Wait(DiskJob::new(move || {
            upload.write(&buffered);
            let committed = upload.commit().map_err(storage_failure);
            let then: Continuation =
                Box::new(move |_ctx: &mut Ctx<'_>| committed.map(|()| Outcome::Done));
            Box::new(then)
        })))
    }
}

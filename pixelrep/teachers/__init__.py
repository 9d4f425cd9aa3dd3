"""Teachers: the frozen text models whose vectors the pixel encoder learns (training and evaluation only).

Not part of the core: `import pixelrep` never loads this package, and nothing in pixelrep/ imports it;
train/ and eval/ do. Training attaches the teachers' vectors to each batch before the model step
(pixelrep.train.align.TeacherTargets), so the step itself sees vectors only.

    load_teacher(name)          "use-m3", "minilm", or a transformers folder / hub id -> a Teacher
    Teacher.sentence_embeddings texts -> unit vectors (cached on disk by text hash with cache_dir)
    TeacherVectors              a teacher's vectors computed ahead (make device-pack), read as a teacher
"""
from pixelrep.aligned import MINILM_ID, USE_ALIASES, USE_M3, teacher_key
from pixelrep.teachers.cache import EmbeddingCache
from pixelrep.teachers.text import (USE_PACKAGE, USE_SHA256, LanguageModel, Teacher, UniversalSentenceEncoder,
                                    load_teacher, resolve_lm)
from pixelrep.teachers.vectors import TeacherVectors, save_teacher_vectors, teacher_folder

__all__ = ["MINILM_ID", "USE_ALIASES", "USE_M3", "USE_PACKAGE", "USE_SHA256", "EmbeddingCache", "LanguageModel",
           "Teacher", "TeacherVectors", "UniversalSentenceEncoder", "load_teacher", "resolve_lm",
           "save_teacher_vectors", "teacher_folder", "teacher_key"]

//! Shared test helpers (the LLM fakes and the OpenAI spec validators).
pub mod fake_llm;
pub mod openai_spec;

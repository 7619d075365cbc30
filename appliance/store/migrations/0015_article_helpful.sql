-- articles.helpful: the customers' thumbs-up on AI answers that cite the article, kept by the conversation flow from
-- here on (a thumbs-up taken back takes one off). This counts the thumbs-up given before, from the stored answers.
-- Frozen.
UPDATE articles SET helpful = (
    SELECT count(*) FROM messages m
    WHERE m.org_id = articles.org_id AND m.role = 'ai' AND m.feedback = 'up'
      AND EXISTS (SELECT 1 FROM json_each(coalesce(m.sources, '[]')) s
                  WHERE json_extract(s.value, '$.article_id') = articles.id)
);

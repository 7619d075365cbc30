export interface Source {
  number: number;
  title: string;
  url?: string;
}

export interface Message {
  id: number;
  conversation_id: number;
  role: "customer" | "ai" | "agent";
  content: string;
  created_at: string;
  outcome: string | null;
  confidence: number | null;
  sources: Source[];
  agent: string | null;
  sentiment?: number | null;
  sentiment_label?: string | null;
}

export interface Note {
  id: number;
  conversation_id: number;
  author: string;
  body: string;
  created_at: string;
}

/** What /ws/console sends (see appliance/web/routes/widget.py). */
export type Frame =
  | { type: "queue"; conversations: { id: number }[] }
  | {
      type: "queue_alert";
      conversation_id: number;
      reason: string | null;
      priority: string;
      topic: string | null;
      assigned_agent_id: number | null;
    }
  | { type: "assigned"; conversation_id: number; how: string }
  | { type: "conversation"; conversation: { id: number } }
  | { type: "message"; message: Message }
  | { type: "status"; conversation_id: number; status: string; handled_by: string; agent: string | null }
  | { type: "agent_joined" | "agent_left"; conversation_id: number; agent: string | null }
  | { type: "typing"; conversation_id: number; role: string }
  | { type: "note"; note: Note }
  | { type: "csat" | "feedback" | "watching" | "pong" | "delta" }
  | { type: "error"; code: string; status: number; message: string };

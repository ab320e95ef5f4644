"""Index engineering: compute endpoints over posted data and custom indices over the store."""

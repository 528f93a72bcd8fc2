"""Mandarin text frontend plugin (jieba + pypinyin + tone sandhi) and the mixed zh/en frontend."""
